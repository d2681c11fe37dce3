import { WorkflowIds } from '../../data-schemas/workflow-ids';
import type { Command } from 'commander';
import type { z } from 'zod';
import { toObjectUri } from '../../activities/store';
import { formatZodIssues } from '../../data-schemas/issues';
import { LabelerChoice, RelabelDatasetInput, labelerKey, type RelabelDatasetResult, type RelabelProgress } from '../../data-schemas/relabel';
import { relabelProgressQuery } from '../../workflows';
import { SchemaOption } from '../options';
import { startAndFollow } from '../follow';
import { registerRelabelShow } from './relabel-show';


/**
 * The parent's id derives from what decides its output (dataset, labeler version, output root):
 * starting the same relabel twice attaches to the run already going.
 */
export function relabelWorkflowId(input: RelabelDatasetInput): string {
  return WorkflowIds.relabelDataset(input.datasetUri, labelerKey(input.labeler), input.outputUri);
}

/** Options left out are undefined: the workflow's parse applies the schema's defaults. */
export interface RelabelCommandOptions {
  labeler?: LabelerChoice['name'];
  model?: string;
  out?: string;
  concurrency?: number;
  reprompts?: number;
  limit?: number;
  budgetUsd?: number;
  budgetTokens?: number;
  wait: boolean;
}

/** The relabelDataset input the options ask for, and nothing more: what they leave out the workflow defaults. */
export function relabelInput(dataset: string, opts: Omit<RelabelCommandOptions, 'wait'>): z.input<typeof RelabelDatasetInput> {
  return {
    datasetUri: toObjectUri(dataset),
    ...(opts.labeler === 'heuristic' && { labeler: { name: 'heuristic' } }),
    // --model names a Gemini model; the heuristic labeler has none, so there it is ignored.
    ...(opts.labeler === 'gemini' && { labeler: { name: 'gemini', ...(opts.model !== undefined && { model: opts.model }) } }),
    ...(opts.out !== undefined && { outputUri: toObjectUri(opts.out) }),
    ...(opts.concurrency !== undefined && { maxConcurrent: opts.concurrency }),
    ...(opts.reprompts !== undefined && { maxReprompts: opts.reprompts }),
    ...(opts.limit !== undefined && { limit: opts.limit }),
    ...((opts.budgetUsd !== undefined || opts.budgetTokens !== undefined) && {
      budget: { ...(opts.budgetUsd !== undefined && { usd: opts.budgetUsd }), ...(opts.budgetTokens !== undefined && { tokens: opts.budgetTokens }) },
    }),
  };
}

/** Starts (or attaches to) a relabelDataset run and follows its progress query until it ends. */
export async function runRelabel(dataset: string, opts: RelabelCommandOptions, say: (line: string) => void): Promise<RelabelDatasetResult | undefined> {
  const input = relabelInput(dataset, opts);
  // Checked here so a bad option fails before anything starts, and the id is the workflow's own.
  const parsed = RelabelDatasetInput.safeParse(input);
  if (!parsed.success) throw new Error(`invalid relabel options: ${formatZodIssues(parsed.error).join('; ')}`);
  return startAndFollow<RelabelDatasetResult, RelabelProgress>({
    workflowType: 'relabelDataset',
    workflowId: relabelWorkflowId(parsed.data),
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
  const fields = RelabelDatasetInput.shape;
  const relabel = program.command('relabel').description('D_rob -> D_lan: relabel trajectories into subtasks, motion plans and action chunks');
  relabel
    .command('run', { isDefault: true })
    .description('start relabelDataset on the stack (vla dev up) and follow it with a progress bar')
    .argument('<dataset>', 'D_rob dataset: a directory, file:///abs/path or s3://bucket/prefix')
    .addOption(new SchemaOption('--labeler <name>', fields.labeler))
    .addOption(new SchemaOption('--model <name>', LabelerChoice.options[1].shape.model))
    // Paths and URIs keep the CLI's wording: the schema takes URIs only, the command paths as well.
    .option('--out <uri-or-path>', 'D_lan output root (default: <dataset>/labels/<labeler>-<version>)')
    .addOption(new SchemaOption('--concurrency <n>', fields.maxConcurrent))
    .addOption(new SchemaOption('--reprompts <n>', fields.maxReprompts))
    .addOption(new SchemaOption('--limit <n>', fields.limit))
    .addOption(new SchemaOption('--budget-usd <usd>', fields.budget.unwrap().shape.usd))
    .addOption(new SchemaOption('--budget-tokens <n>', fields.budget.unwrap().shape.tokens))
    .option('--no-wait', 'start it and return; watch it in the Web UI')
    .action(async (dataset: string, opts: RelabelCommandOptions) => {
      const say = (line: string): void => console.log(line);
      const result = await runRelabel(dataset, opts, say);
      if (result) printRelabelResult(result, say);
    });
  registerRelabelShow(relabel);
  return relabel;
}
