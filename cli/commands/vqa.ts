import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { Command, InvalidArgumentError } from 'commander';
import { readFileSync } from 'node:fs';
import { toObjectUri } from '../../activities/store';
import { formatZodIssues } from '../../data-schemas/issues';
import { BenchmarkId, NightlyEvaluationInput, VqaSweepInput, type BenchmarkSource, type VqaSweepResult } from '../../data-schemas/vqa';
import { ensureNightlySchedule, NIGHTLY_SCHEDULE_DEFAULTS, NIGHTLY_SCHEDULE_ID } from '../../infra/schedules';
import { refuseLocalInput, startAndFollow, withTemporalClient } from '../follow';
import { SchemaOption } from '../options';

/** `<benchmark>=<dir-or-uri>`, repeatable. */
function benchmarkSource(value: string, previous: BenchmarkSource[] = []): BenchmarkSource[] {
  const eq = value.indexOf('=');
  const parsed = BenchmarkId.safeParse(value.slice(0, eq));
  if (eq < 1 || !parsed.success) throw new InvalidArgumentError(`expected <benchmark>=<dir-or-uri> with a benchmark of ${BenchmarkId.options.join(', ')}`);
  return [...previous, { benchmark: parsed.data, uri: toObjectUri(value.slice(eq + 1)) }];
}


/** Starts (or attaches to) a vqaSweep and waits for its report. */
export async function runVqaSweep(input: VqaSweepInput, say: (line: string) => void, wait = true): Promise<VqaSweepResult | undefined> {
  const parsed = VqaSweepInput.safeParse(input);
  if (!parsed.success) throw new Error(`invalid sweep: ${formatZodIssues(parsed.error).join('; ')}`);
  return startAndFollow<VqaSweepResult, unknown>({
    workflowType: 'vqaSweep',
    workflowId: WorkflowIds.vqaSweep(parsed.data.outputUri),
    input: parsed.data,
    wait,
    say,
  });
}

export function printVqaResult(result: VqaSweepResult, say: (line: string) => void): void {
  for (const [model, scores] of Object.entries(result.scores)) {
    say(`  ${model}: ${Object.values(scores)
      .map((s) => `${s.benchmark} ${s.value.toFixed(1)} ± ${s.stderr.toFixed(1)} (${s.items} items${s.truncated > 0 ? `, ${s.truncated} truncated` : ''}${s.withheld > 0 ? `, ${s.withheld} withheld` : ''})`)
      .join(', ')}`);
  }
  const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
  for (const r of result.retention) {
    say(
      `  retention ${r.model} / ${r.base}: ${pct(r.overall)} overall (95% interval ${pct(r.overallInterval[0])} to ${pct(r.overallInterval[1])})${r.below.length ? `, below ${pct(r.threshold)} on ${r.below.join(', ')}` : ''}`,
    );
  }
  say(`  predictions: ${result.predictions.made} made, ${result.predictions.reused} reused from earlier runs, ${result.predictions.truncated} answers truncated and ${result.predictions.withheld} withheld by the provider (both scored as wrong)`);
  say(`  report: ${result.reportUri}`);
  say(`  chart:  ${result.chartUri}`);
}

export function registerVqa(program: Command): void {
  program
    .command('vqa')
    .description('start vqaSweep from a JSON input file (the same JSON the Web UI takes) and print the scores and the report')
    .argument('<input.json>', 'a VqaSweepInput (README: "vqaSweep")')
    .option('--no-wait', 'start it and return; watch it in the Web UI')
    .action(async (file: string, opts: { wait: boolean }) => {
      const say = (line: string): void => console.log(line);
      const result = await runVqaSweep(JSON.parse(readFileSync(file, 'utf8')) as VqaSweepInput, say, opts.wait);
      if (result) printVqaResult(result, say);
    });

  const schedule = program.command('schedule').description('the nightly VQA evaluation Schedule');
  schedule
    .command('nightly')
    .description('create the nightly Schedule, or update it if it exists (a pause made in the UI is kept)')
    .requiredOption('--runs <uri-or-path>', 'where training runs live (each <run>/result.json)')
    .requiredOption('--out <uri-or-path>', 'where nightly sweeps and last.json go')
    .requiredOption('--benchmark <name=dir-or-uri>', 'a benchmark and its data; repeat for more', benchmarkSource)
    .addOption(new SchemaOption('--limit <n>', NightlyEvaluationInput.shape.limit))
    // The Schedule's own settings, not the workflow's input: their defaults are infra/schedules.ts's.
    .option('--cron <expr>', 'when, in --time-zone', NIGHTLY_SCHEDULE_DEFAULTS.cron)
    .option('--time-zone <tz>', 'IANA time zone', NIGHTLY_SCHEDULE_DEFAULTS.timeZone)
    .option('--catchup <duration>', 'nights missed while the server was down still run within this window', NIGHTLY_SCHEDULE_DEFAULTS.catchupWindow)
    .option('--id <scheduleId>', 'schedule id', NIGHTLY_SCHEDULE_ID)
    .action(async (opts: { runs: string; out: string; benchmark: BenchmarkSource[]; limit?: number; cron: string; timeZone: string; catchup: string; id: string }) => {
      const input = NightlyEvaluationInput.safeParse({
        runsUri: toObjectUri(opts.runs),
        outputUri: toObjectUri(opts.out),
        benchmarks: opts.benchmark,
        ...(opts.limit !== undefined && { limit: opts.limit }),
      });
      if (!input.success) throw new Error(`invalid nightly settings: ${formatZodIssues(input.error).join('; ')}`);
      refuseLocalInput(input.data);
      await withTemporalClient(async (client) => {
        const { created } = await ensureNightlySchedule(client, { scheduleId: opts.id, input: input.data, cron: opts.cron, timeZone: opts.timeZone, catchupWindow: opts.catchup });
        console.log(`schedule ${opts.id} ${created ? 'created' : 'updated'}: "${opts.cron}" ${opts.timeZone}, overlap skip, catch-up ${opts.catchup}`);
      });
    });
  for (const [name, description] of [
    ['trigger', 'start tonight\'s evaluation now'],
    ['pause', 'pause the schedule (as the Web UI does)'],
    ['unpause', 'resume the schedule'],
  ] as const) {
    schedule
      .command(name)
      .description(description)
      .option('--id <scheduleId>', 'schedule id', NIGHTLY_SCHEDULE_ID)
      .action(async (opts: { id: string }) => {
        await withTemporalClient(async (client) => {
          const handle = client.schedule.getHandle(opts.id);
          if (name === 'trigger') await handle.trigger();
          else if (name === 'pause') await handle.pause('paused with vla schedule pause');
          else await handle.unpause('unpaused with vla schedule unpause');
          console.log(`schedule ${opts.id}: ${name} done`);
        });
      });
  }
}
