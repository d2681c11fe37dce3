import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { Command, Option } from 'commander';
import { toObjectUri } from '../../activities/store';
import { formatZodIssues } from '../../data-schemas/issues';
import {
  DEFAULT_GEMINI_MODEL,
  RelabelDatasetInput,
  labelerKey,
  type RelabelDatasetResult,
  type RelabelProgress,
} from '../../data-schemas/relabel';
import { relabelProgressQuery } from '../../workflows';
import { nonNegativeInt, positiveInt, positiveNumber } from '../options';
import { startAndFollow } from '../follow';
import { registerRelabelShow } from './relabel-show';


/**
 * The parent's id derives from what decides its output (dataset, labeler version, output root):
 * starting the same relabel twice attaches to the run already going.
 */
export function relabelWorkflowId(input: RelabelDatasetInput): string {
  return WorkflowIds.relabelDataset(input.datasetUri, labelerKey(input.labeler), input.outputUri);
}

export interface RelabelCommandOptions {
  labeler: 'heuristic' | 'gemini';
  model: string;
  out?: string;
  concurrency: number;
  reprompts: number;
  limit?: number;
  budgetUsd?: number;
  budgetTokens?: number;
  wait: boolean;
}

/** Starts (or attaches to) a relabelDataset run and follows its progress query until it ends. */
export async function runRelabel(dataset: string, opts: RelabelCommandOptions, say: (line: string) => void): Promise<RelabelDatasetResult | undefined> {
  const parsed = RelabelDatasetInput.safeParse({
    datasetUri: toObjectUri(dataset),
    labeler: opts.labeler === 'gemini' ? { name: 'gemini', model: opts.model } : { name: 'heuristic' },
    ...(opts.out !== undefined && { outputUri: toObjectUri(opts.out) }),
    maxConcurrent: opts.concurrency,
    maxReprompts: opts.reprompts,
    ...(opts.limit !== undefined && { limit: opts.limit }),
    ...((opts.budgetUsd !== undefined || opts.budgetTokens !== undefined) && {
      budget: { ...(opts.budgetUsd !== undefined && { usd: opts.budgetUsd }), ...(opts.budgetTokens !== undefined && { tokens: opts.budgetTokens }) },
    }),
  });
  if (!parsed.success) throw new Error(`invalid relabel options: ${formatZodIssues(parsed.error).join('; ')}`);
  const input = parsed.data;
  return startAndFollow<RelabelDatasetResult, RelabelProgress>({
    workflowType: 'relabelDataset',
    workflowId: relabelWorkflowId(input),
    input,
    wait: opts.wait,
    progress: {
      query: relabelProgressQuery,
      format: '  {bar} {value}/{total} | done {done} skipped {skipped} quarantined {quarantined} failed {failed} | ${cost}',
      bar: ({ counts: c, usage }) =>
        c.total > 0
          ? {
              value: c.done + c.skipped + c.quarantined + c.failed,
              total: c.total,
              payload: { done: c.done, skipped: c.skipped, quarantined: c.quarantined, failed: c.failed, cost: usage.costUsd.toFixed(4) },
            }
          : undefined,
    },
    say,
  });
}

export function printRelabelResult(result: RelabelDatasetResult, say: (line: string) => void): void {
  const c = result.counts;
  say(`  ${result.status}: ${c.done} labelled, ${c.skipped} already done, ${c.quarantined} quarantined, ${c.failed} failed of ${c.total}`);
  say(`  tokens ${result.usage.inputTokens} in / ${result.usage.outputTokens} out, $${result.usage.costUsd.toFixed(4)}`);
  say(`  D_lan:  ${result.outputUri}`);
  say(`  report: ${result.reportUri}`);
  for (const q of result.quarantined.slice(0, 10)) say(`  quarantined ${q.trajectoryId}: ${q.reason}`);
}

export function registerRelabel(program: Command): Command {
  const relabel = program.command('relabel').description('D_rob -> D_lan: relabel trajectories into subtasks, motion plans and action chunks');
  relabel
    .command('run', { isDefault: true })
    .description('start relabelDataset on the stack (vla dev up) and follow it with a progress bar')
    .argument('<dataset>', 'D_rob dataset: a directory, file:///abs/path or s3://bucket/prefix')
    .addOption(new Option('--labeler <name>', 'heuristic (no key) or gemini (GEMINI_API_KEY in the gemini worker)').choices(['heuristic', 'gemini']).default('heuristic'))
    .option('--model <name>', 'Gemini model', DEFAULT_GEMINI_MODEL)
    .option('--out <uri-or-path>', 'D_lan output root (default: <dataset>/labels/<labeler>-<version>)')
    .option('--concurrency <n>', 'trajectories labelled at once (child workflows in flight)', positiveInt, 32)
    .option('--reprompts <n>', 're-prompts before quarantine', nonNegativeInt, 3)
    .option('--limit <n>', 'only the first N trajectories', positiveInt)
    .option('--budget-usd <usd>', 'stop starting trajectories at this spend', positiveNumber)
    .option('--budget-tokens <n>', 'stop starting trajectories at this many tokens', positiveInt)
    .option('--no-wait', 'start it and return; watch it in the Web UI')
    .action(async (dataset: string, opts: RelabelCommandOptions) => {
      const say = (line: string): void => console.log(line);
      const result = await runRelabel(dataset, opts, say);
      if (result) printRelabelResult(result, say);
    });
  registerRelabelShow(relabel);
  return relabel;
}
