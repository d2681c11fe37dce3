import { WorkflowFailedError, WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { MultiBar, type SingleBar } from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import stableStringify from 'fast-json-stable-stringify';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  EXPERIMENT_STATUS_QUERY,
  ExperimentInput,
  ExperimentResult,
  ExperimentStatus,
  type StageKind,
  type StageRow,
  type StageState,
} from '../../data-schemas/experiment';
import { describeZodIssues, formatZodIssues } from '../../data-schemas/issues';
import { RelabelProgress } from '../../data-schemas/relabel';
import { ShardProgress } from '../../data-schemas/shard';
import { TrainingProgress } from '../../data-schemas/training';
import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { campaignProgressQuery, experimentPauseSignal, experimentResumeSignal, experimentStatusQuery, relabelProgressQuery, shardProgressQuery, trainingProgressQuery } from '../../workflows';
import { rootCause } from '../../workflows/failure-cause';
import { vqaSweepProgressQuery } from '../../workflows/vqa/vqa-sweep';
import { refuseLocalInput, startOrAttach, withTemporalClient } from '../follow';

/** How far a running stage's own workflow has got, from its `progress` query. */
export interface ChildProgress {
  value: number;
  total: number;
  text: string;
}

/** Each stage kind's progress query and how its answer reads on the stage's line. */
const CHILD_PROGRESS: Record<StageKind, (handle: WorkflowHandle) => Promise<ChildProgress | undefined>> = {
  relabel: async (handle) => {
    const { counts: c, usage } = RelabelProgress.parse(await handle.query(relabelProgressQuery));
    const value = c.done + c.skipped + c.quarantined + c.failed;
    return { value, total: c.total, text: `${value}/${c.total} trajectories, ${c.quarantined} quarantined, ${c.failed} failed, $${usage.costUsd.toFixed(4)}` };
  },
  shard: async (handle) => {
    const p = ShardProgress.parse(await handle.query(shardProgressQuery));
    return { value: p.done, total: p.total, text: `${p.phase} ${p.done}/${p.total} shards` };
  },
  train: async (handle) => {
    const p = TrainingProgress.parse(await handle.query(trainingProgressQuery));
    return { value: p.step, total: p.totalSteps, text: `${p.phase} step ${p.step}/${p.totalSteps}, loss ${p.loss?.toFixed(4) ?? '-'}` };
  },
  vqa: async (handle) => {
    const p = await handle.query(vqaSweepProgressQuery);
    return { value: p.finished, total: p.evaluations, text: `${p.finished}/${p.evaluations} evaluations` };
  },
  campaign: async (handle) => {
    const p = await handle.query(campaignProgressQuery);
    return { value: p.done, total: p.total, text: `${p.done}/${p.total} episodes, ${p.failed} failed` };
  },
};

/** The running stages' own progress, by stage id; a stage whose query fails (not started yet, just ended) has none. */
async function childProgress(client: Client, stages: readonly StageRow[]): Promise<Map<string, ChildProgress>> {
  const found = new Map<string, ChildProgress>();
  await Promise.all(
    stages.map(async (row) => {
      if (row.state !== 'running' || row.workflowId === undefined) return;
      const progress = await CHILD_PROGRESS[row.stage](client.workflow.getHandle(row.workflowId)).catch(() => undefined);
      if (progress !== undefined) found.set(row.id, progress);
    }),
  );
  return found;
}

const STATE_MARK: Record<StageState, string> = {
  pending: ' ',
  running: '>',
  reused: '=',
  done: '+',
  failed: 'x',
  skipped: '-',
  cancelled: 'x',
};

/** `1h02m`, `3m07s`, `12s`. */
export function formatElapsed(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

/**
 * One stage on one line: mark, id, state, elapsed time, then the child's progress while it runs,
 * else the row's detail (why it failed or was skipped; who made a reused result).
 */
export function stageLine(row: StageRow, now: Date, progress?: ChildProgress, idWidth = 0): string {
  const elapsed = row.startedAt !== undefined ? formatElapsed((row.finishedAt !== undefined ? Date.parse(row.finishedAt) : now.getTime()) - Date.parse(row.startedAt)) : '';
  const note = progress?.text ?? row.detail ?? '';
  return `${STATE_MARK[row.state]} ${row.id.padEnd(idWidth)}  ${row.state.padEnd(9)} ${elapsed.padStart(6)}${note !== '' ? `  ${note}` : ''}`.trimEnd();
}

function money(usd: number | undefined): string {
  return usd === undefined ? 'none' : `$${usd.toFixed(4)}`;
}

function hours(h: number | undefined): string {
  return h === undefined ? 'none' : `${h.toFixed(2)} h`;
}

export function spentLine(status: Pick<ExperimentStatus, 'spent' | 'budget'>): string {
  return `spent: Gemini ${money(status.spent.geminiUsd)} (budget ${money(status.budget.geminiUsd)}), GPU ${hours(status.spent.gpuHours)} (budget ${hours(status.budget.gpuHours)})`;
}

function headerLine(status: ExperimentStatus): string {
  const finished = status.stages.filter((s) => s.state !== 'pending' && s.state !== 'running').length;
  return `experiment ${status.name}: ${status.state}${status.pauseRequested && status.state !== 'paused' ? ' (pause requested)' : ''}, ${finished}/${status.stages.length} stages finished`;
}

/** `vla experiment status`: the experiment's state, a line per stage, what it spent. */
export function formatStageTable(status: ExperimentStatus, now: Date, progress: ReadonlyMap<string, ChildProgress> = new Map()): string[] {
  const idWidth = Math.max(0, ...status.stages.map((s) => s.id.length));
  return [
    headerLine(status),
    ...status.stages.map((row) => `  ${stageLine(row, now, progress.get(row.id), idWidth)}`),
    `  ${spentLine(status)}`,
    ...(status.error !== undefined ? [`  error: ${status.error}`] : []),
    ...(status.reportUri !== undefined ? [`  report: ${status.reportUri}`] : []),
  ];
}

/** What the command prints when the experiment has ended. */
export function formatExperimentResult(result: ExperimentResult, now: Date): string[] {
  return [...formatStageTable({ ...result, reportUri: undefined }, now), `  report: ${result.reportUri}`, `  status: ${result.statusUri}`];
}

/** Why the command exits non-zero for this result, or undefined when the experiment completed. */
export function experimentFailure(result: Pick<ExperimentResult, 'name' | 'state' | 'error'>): string | undefined {
  if (result.state === 'completed') return undefined;
  return `experiment ${result.name} ended ${result.state}${result.error !== undefined ? `: ${result.error}` : ''}`;
}

/**
 * The experiment input in `file`, parsed before anything is started.
 * @throws Error naming the file and every bad field, one per line
 */
export function readExperimentInput(file: string): { raw: unknown; input: ExperimentInput } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not a readable JSON file: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = ExperimentInput.safeParse(raw);
  if (!parsed.success) throw new Error(`${file} is not a valid experiment input:\n${formatZodIssues(parsed.error).map((line) => `  ${line}`).join('\n')}`);
  return { raw, input: parsed.data };
}

/** The status query answered something else than an ExperimentStatus: this CLI and the workflow disagree. */
class UnreadableStatusError extends Error {
  override name = 'UnreadableStatusError';
}

async function queryStatus(handle: WorkflowHandle): Promise<ExperimentStatus> {
  const answer: unknown = await handle.query(experimentStatusQuery);
  const parsed = ExperimentStatus.safeParse(answer);
  if (!parsed.success) throw new UnreadableStatusError(`${handle.workflowId} answered its ${EXPERIMENT_STATUS_QUERY} query with something this command does not read: ${describeZodIssues(parsed.error, { max: 5 })}`);
  return parsed.data;
}

interface StatusDisplay {
  show(status: ExperimentStatus, progress: ReadonlyMap<string, ChildProgress>, now: Date): void;
  stop(): void;
}

/** A terminal: one bar per stage, redrawn in place, under one for the whole experiment. */
class BarsDisplay implements StatusDisplay {
  // On stdout, the stream whose being a terminal chose this display (cli-progress draws on stderr by default).
  private readonly multibar = new MultiBar({ format: '{bar} {line}', barsize: 16, hideCursor: true, clearOnComplete: false, stream: process.stdout });
  private readonly bars = new Map<string, SingleBar>();

  show(status: ExperimentStatus, progress: ReadonlyMap<string, ChildProgress>, now: Date): void {
    const finished = status.stages.filter((s) => s.state !== 'pending' && s.state !== 'running').length;
    this.set('', finished, Math.max(1, status.stages.length), `${headerLine(status)} | ${spentLine(status)}`);
    const idWidth = Math.max(0, ...status.stages.map((s) => s.id.length));
    for (const row of status.stages) {
      const child = progress.get(row.id);
      const complete = row.state === 'done' || row.state === 'reused';
      this.set(row.id, child?.value ?? (complete ? 1 : 0), child !== undefined && child.total > 0 ? child.total : 1, stageLine(row, now, child, idWidth));
    }
  }

  private set(id: string, value: number, total: number, line: string): void {
    const bar = this.bars.get(id);
    if (bar === undefined) {
      this.bars.set(id, this.multibar.create(total, value, { line }));
    } else {
      bar.setTotal(total);
      bar.update(value, { line });
    }
  }

  stop(): void {
    this.multibar.stop();
  }
}

/** CI and pipes: a line whenever the experiment or a stage changes state. */
class LinesDisplay implements StatusDisplay {
  private readonly shown = new Map<string, string>();
  constructor(private readonly say: (line: string) => void) {}

  show(status: ExperimentStatus, progress: ReadonlyMap<string, ChildProgress>, now: Date): void {
    if (this.shown.get('') !== status.state) {
      this.shown.set('', status.state);
      this.say(`experiment ${status.name}: ${status.state}`);
    }
    for (const row of status.stages) {
      if (this.shown.get(row.id) === row.state) continue;
      this.shown.set(row.id, row.state);
      this.say(`  ${stageLine(row, now, progress.get(row.id))}`);
    }
  }

  stop(): void {}
}

export interface ExperimentCommandOptions {
  wait: boolean;
  /** Bars redrawn in place (a terminal) or a line per change (CI, pipes). @default process.stdout.isTTY */
  tty?: boolean;
}

/**
 * `vla experiment <input.json>`: parses the input (nothing starts when it is wrong), starts the
 * experiment or attaches to the one running under its name, and follows it until it ends.
 */
export async function runExperiment(file: string, opts: ExperimentCommandOptions, say: (line: string) => void): Promise<ExperimentResult | undefined> {
  const { raw, input } = readExperimentInput(file);
  return startExperiment(raw, input, file, opts, say);
}

/** Starts (or attaches to) the experiment of a parsed input and follows it; `source` names the input in messages. */
export async function startExperiment(raw: unknown, input: ExperimentInput, source: string, opts: ExperimentCommandOptions, say: (line: string) => void): Promise<ExperimentResult | undefined> {
  refuseLocalInput(raw);
  return withTemporalClient(async (client, config) => {
    // The input as written: the workflow's own parse applies the schema's defaults.
    const handle = await startOrAttach(client, config, { workflowType: 'experiment', workflowId: WorkflowIds.experiment(input.name), input: raw, say });
    if (!sameJson(await startedInput(client, handle), raw)) {
      say(`  note: ${handle.workflowId} was already running with another input; this command follows that run, not ${source} (cancel it, or give this input another name)`);
    }
    return opts.wait ? followExperiment(client, handle, opts, say) : undefined;
  });
}

/** The input the run was started with: its history's first event. */
async function startedInput(client: Client, handle: WorkflowHandle): Promise<unknown> {
  const { history } = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId: handle.workflowId },
    maximumPageSize: 1,
  });
  const payload = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return payload === undefined ? undefined : client.options.loadedDataConverter.payloadConverter.fromPayload(payload);
}

function sameJson(a: unknown, b: unknown): boolean {
  return stableStringify(a) === stableStringify(b);
}

/**
 * Polls the experiment's status query about once a second and shows each stage (with a running
 * stage's own progress) until the run ends; returns its result. A run that failed as a workflow
 * (cancelled, a stage's failure) throws its root cause.
 */
export async function followExperiment(client: Client, handle: WorkflowHandle, opts: Pick<ExperimentCommandOptions, 'tty'>, say: (line: string) => void): Promise<ExperimentResult> {
  const display: StatusDisplay = (opts.tty ?? process.stdout.isTTY === true) ? new BarsDisplay() : new LinesDisplay(say);
  const result = handle.result() as Promise<unknown>;
  let finished = false;
  void result.then(
    () => (finished = true),
    () => (finished = true),
  );
  const refresh = async (): Promise<void> => {
    let status: ExperimentStatus;
    try {
      status = await queryStatus(handle);
    } catch (err) {
      // A query can fail while the run starts or ends; the next tick asks again, and the result says how it ended.
      if (err instanceof UnreadableStatusError) throw err;
      return;
    }
    display.show(status, await childProgress(client, status.stages), new Date());
  };
  try {
    while (!finished) {
      await refresh();
      await Promise.race([result.catch(() => undefined), sleep(1_000)]);
    }
  } finally {
    display.stop();
  }
  let answer: unknown;
  try {
    answer = await result;
  } catch (err) {
    if (err instanceof WorkflowFailedError) throw new Error(`${handle.workflowId}: ${rootCause(err)}`);
    throw err;
  }
  const parsed = ExperimentResult.safeParse(answer);
  if (!parsed.success) throw new Error(`${handle.workflowId} returned a result this command does not read: ${describeZodIssues(parsed.error, { max: 5 })}`);
  return parsed.data;
}

function experimentName(value: string): string {
  const parsed = ExperimentInput.shape.name.safeParse(value);
  if (!parsed.success) throw new InvalidArgumentError(`"${value}" is not an experiment name: ${describeZodIssues(parsed.error, { root: 'name' })}`);
  return parsed.data;
}

/** The running (or finished) experiment of that name. */
async function withExperiment(name: string, fn: (handle: WorkflowHandle, client: Client) => Promise<void>): Promise<void> {
  await withTemporalClient(async (client) => {
    try {
      await fn(client.workflow.getHandle(WorkflowIds.experiment(name)), client);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new Error(`no experiment named ${name} (workflow ${WorkflowIds.experiment(name)}) on this Temporal server`);
      throw err;
    }
  });
}

export function registerExperiment(program: Command): Command {
  const experiment = program.command('experiment').description('the whole method as one workflow: relabel, shard, train each variant, VQA sweep, campaign, report');
  experiment
    .command('run', { isDefault: true })
    .description('start an experiment from its JSON input (the same JSON the Web UI takes), or attach to the one running under its name, and follow each stage')
    .argument('<input.json>', 'an ExperimentInput (README: "experiment")')
    .option('--no-wait', 'start it and return; follow it with `vla experiment status` or in the Web UI')
    .action(async (file: string, opts: { wait: boolean }) => {
      const say = (line: string): void => console.log(line);
      const result = await runExperiment(file, { wait: opts.wait }, say);
      if (result === undefined) return;
      for (const line of formatExperimentResult(result, new Date())) say(line);
      const failure = experimentFailure(result);
      if (failure !== undefined) throw new Error(failure);
    });
  experiment
    .command('status')
    .description('print the stage table of an experiment once')
    .argument('<name>', 'the experiment name (its input\'s "name")', experimentName)
    .action((name: string) =>
      withExperiment(name, async (handle, client) => {
        const status = await queryStatus(handle);
        for (const line of formatStageTable(status, new Date(), await childProgress(client, status.stages))) console.log(line);
      }),
    );
  experiment
    .command('pause')
    .description('start no further stage until resumed; running stages finish')
    .argument('<name>', 'the experiment name', experimentName)
    .action((name: string) =>
      withExperiment(name, async (handle) => {
        await handle.signal(experimentPauseSignal);
        console.log(`pause requested for ${handle.workflowId}: running stages finish, no new stage starts until \`vla experiment resume ${name}\``);
      }),
    );
  experiment
    .command('resume')
    .description('let a paused experiment start its next stages')
    .argument('<name>', 'the experiment name', experimentName)
    .action((name: string) =>
      withExperiment(name, async (handle) => {
        await handle.signal(experimentResumeSignal);
        console.log(`resume requested for ${handle.workflowId}`);
      }),
    );
  experiment
    .command('cancel')
    .description('cancel an experiment: running stages stop cleanly; finished stages stay sealed for a re-run to reuse')
    .argument('<name>', 'the experiment name', experimentName)
    .action((name: string) =>
      withExperiment(name, async (handle) => {
        await handle.cancel();
        console.log(`cancel requested for ${handle.workflowId}: running stages stop cleanly; finished stages stay sealed in the store, and a re-run of the same input reuses them`);
      }),
    );
  return experiment;
}
