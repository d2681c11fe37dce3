import { describe, expect, it } from 'vitest';
import { experimentFailure, formatElapsed, formatExperimentResult, formatStageTable, stageLine } from '../../cli/commands/experiment';
import { buildProgram } from '../../cli/program';
import { ExperimentResult, ExperimentStatus, type StageRow } from '../../data-schemas/experiment';

/** What `vla experiment` prints and how it exits, without a server (the command itself: test/integration/experiment-cli.test.ts). */
describe('vla experiment: the stage table and the result', () => {
  const now = new Date('2026-12-07T11:00:00Z');
  const rows: StageRow[] = [
    { id: 'relabel', stage: 'relabel', state: 'done', startedAt: '2026-12-07T10:00:00Z', finishedAt: '2026-12-07T10:03:07Z', geminiUsd: 0.5 },
    { id: 'shard', stage: 'shard', state: 'reused', detail: 'made by experiment exp-0' },
    { id: 'train:vlm2vla', stage: 'train', variant: 'vlm2vla', state: 'running', startedAt: '2026-12-07T09:58:00Z', workflowId: 'train-lora:x' },
    { id: 'train:at', stage: 'train', variant: 'at', state: 'failed', startedAt: '2026-12-07T10:03:07Z', finishedAt: '2026-12-07T10:04:00Z', detail: 'CUDA out of memory' },
    { id: 'vqa', stage: 'vqa', state: 'skipped', detail: 'a variant failed' },
  ];
  const status = ExperimentStatus.parse({ name: 'exp-a', state: 'running', pauseRequested: true, stages: rows, spent: { geminiUsd: 0.5, gpuHours: 1.25 }, budget: { geminiUsd: 5 } });

  it('elapsed times read as seconds, minutes or hours', () => {
    expect([0, 12_400, 187_000, 3_720_000, -5].map(formatElapsed)).toEqual(['0s', '12s', '3m07s', '1h02m', '0s']);
  });

  it('one line per stage: mark, id, state, elapsed (to now while running), then the child\'s progress or the detail', () => {
    expect(formatStageTable(status, now, new Map([['train:vlm2vla', { value: 3, total: 10, text: 'training step 3/10, loss 0.5000' }]]))).toEqual([
      'experiment exp-a: running (pause requested), 4/5 stages finished',
      '  + relabel        done       3m07s',
      '  = shard          reused            made by experiment exp-0',
      '  > train:vlm2vla  running    1h02m  training step 3/10, loss 0.5000',
      '  x train:at       failed       53s  CUDA out of memory',
      '  - vqa            skipped           a variant failed',
      '  spent: Gemini $0.5000 (budget $5.0000), GPU 1.25 h (budget none)',
    ]);
    expect(stageLine(rows[2]!, now)).toBe('> train:vlm2vla  running    1h02m');
  });

  it('the result: the table, the report and the stored status; a non-zero exit unless it completed, with the cause', () => {
    const result = ExperimentResult.parse({
      ...status,
      state: 'budget_exhausted',
      pauseRequested: false,
      error: 'GPU budget 2 h spent before train:at could start',
      reportUri: 'file:///store/experiments/exp-a/report.html',
      statusUri: 'file:///store/experiments/exp-a/experiment.json',
    });
    const lines = formatExperimentResult(result, now);
    expect(lines[0]).toBe('experiment exp-a: budget_exhausted, 4/5 stages finished');
    expect(lines.slice(-3)).toEqual(['  error: GPU budget 2 h spent before train:at could start', '  report: file:///store/experiments/exp-a/report.html', '  status: file:///store/experiments/exp-a/experiment.json']);
    expect(experimentFailure(result)).toBe('experiment exp-a ended budget_exhausted: GPU budget 2 h spent before train:at could start');
    for (const state of ['failed', 'cancelled'] as const) expect(experimentFailure({ name: 'exp-a', state })).toBe(`experiment exp-a ended ${state}`);
    expect(experimentFailure({ ...result, state: 'completed' })).toBeUndefined();
  });

  it('`vla experiment <input.json>` runs the input; status, pause, resume and cancel are subcommands beside it', async () => {
    const program = buildProgram();
    const experiment = program.commands.find((c) => c.name() === 'experiment');
    expect(experiment?.commands.map((c) => c.name())).toEqual(['run', 'status', 'pause', 'resume', 'cancel']);
    const got: unknown[][] = [];
    for (const sub of experiment?.commands ?? []) sub.action((...args: unknown[]) => void got.push([sub.name(), args[0]]));
    await program.parseAsync(['experiment', 'input.json'], { from: 'user' });
    await program.parseAsync(['experiment', 'status', 'exp-a'], { from: 'user' });
    expect(got).toEqual([
      ['run', 'input.json'],
      ['status', 'exp-a'],
    ]);
  });
});
