import { WorkflowIds } from '../../data-schemas/workflow-ids';
import type { Command } from 'commander';
import type { z } from 'zod';
import { toObjectUri } from '../../activities/store';
import { formatZodIssues } from '../../data-schemas/issues';
import { ShardDatasetInput, defaultShardOutput, type ShardDatasetResult, type ShardProgress } from '../../data-schemas/training';
import { shardProgressQuery } from '../../workflows';
import { SchemaOption } from '../options';
import { startAndFollow } from '../follow';

/** --target-shard-mb is in MiB; the input's targetShardBytes in bytes. */
const MIB = 2 ** 20;

/** Options left out are undefined: the workflow's parse applies the schema's defaults. */
export interface ShardCommandOptions {
  out?: string;
  validationFraction?: number;
  seed?: number;
  targetShardMb?: number;
  concurrency?: number;
  wait: boolean;
}

/**
 * The shardDataset input the options ask for; what they leave out the workflow defaults. The
 * output root is always set: resolved here, so the workflow id names the real one.
 */
export function shardInput(dataset: string, opts: Omit<ShardCommandOptions, 'wait'>): z.input<typeof ShardDatasetInput> {
  const datasetUri = toObjectUri(dataset);
  const given = {
    datasetUri,
    ...(opts.validationFraction !== undefined && { validationFraction: opts.validationFraction }),
    ...(opts.seed !== undefined && { seed: opts.seed }),
    ...(opts.targetShardMb !== undefined && { targetShardBytes: Math.round(opts.targetShardMb * MIB) }),
    ...(opts.concurrency !== undefined && { maxConcurrentShards: opts.concurrency }),
  };
  if (opts.out !== undefined) return { ...given, outputUri: toObjectUri(opts.out) };
  // The default root names the seed and split as the workflow will see them, defaults applied.
  const effective = ShardDatasetInput.safeParse(given);
  if (!effective.success) return given; // runShard's parse names the problem
  return { ...given, outputUri: defaultShardOutput(datasetUri, effective.data.seed, effective.data.validationFraction) };
}

/** Starts (or attaches to) a shardDataset run and follows its progress query until it ends. */
export async function runShard(dataset: string, opts: ShardCommandOptions, say: (line: string) => void): Promise<ShardDatasetResult | undefined> {
  const input = shardInput(dataset, opts);
  const parsed = ShardDatasetInput.safeParse(input);
  if (!parsed.success) throw new Error(`invalid shard options: ${formatZodIssues(parsed.error).join('; ')}`);
  return startAndFollow<ShardDatasetResult, ShardProgress>({
    workflowType: 'shardDataset',
    workflowId: WorkflowIds.shardDataset(parsed.data.outputUri!),
    input,
    wait: opts.wait,
    progress: {
      query: shardProgressQuery,
      format: '  {bar} {value}/{total} shards | {phase} | written {written} skipped {skipped} | {mib} MiB',
      bar: (p) => (p.total > 0 ? { value: p.done, total: p.total, payload: { phase: p.phase, written: p.written, skipped: p.skipped, mib: (p.bytes / 2 ** 20).toFixed(1) } } : undefined),
    },
    say,
  });
}

export function printShardResult(result: ShardDatasetResult, say: (line: string) => void): void {
  say(`  ${result.shards} shards, ${result.samples} samples, ${(result.bytes / 2 ** 20).toFixed(1)} MiB (${result.written} written, ${result.skipped} already complete)`);
  say(`  shards:   ${result.outputUri}`);
  say(`  manifest: ${result.manifestUri}`);
}

export function registerShard(program: Command): Command {
  const fields = ShardDatasetInput.shape;
  return program
    .command('shard')
    .description('D_lan -> WebDataset tar training shards (train/validation split by trajectory), on the stack (vla dev up)')
    .argument('<dataset>', 'D_lan dataset (output of vla relabel): a directory, file:///abs/path or s3://bucket/prefix')
    .option('--out <uri-or-path>', 'shard set root (default: <dataset>/shards/<prompt version>-s<seed>-v<validation %>)')
    .addOption(new SchemaOption('--validation-fraction <f>', fields.validationFraction))
    .addOption(new SchemaOption('--seed <n>', fields.seed))
    .addOption(new SchemaOption('--target-shard-mb <mb>', fields.targetShardBytes, { unit: { name: 'MiB', factor: MIB, fieldUnit: 'bytes' } }))
    .addOption(new SchemaOption('--concurrency <n>', fields.maxConcurrentShards))
    .option('--no-wait', 'start it and return; watch it in the Web UI')
    .action(async (dataset: string, opts: ShardCommandOptions) => {
      const say = (line: string): void => console.log(line);
      const result = await runShard(dataset, opts, say);
      if (result) printShardResult(result, say);
    });
}
