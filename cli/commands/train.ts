import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { Command, Option } from 'commander';
import { execFile } from 'node:child_process';
import { isAbsolute, resolve } from 'node:path';
import { promisify } from 'node:util';
import { toObjectUri } from '../../activities/store';
import { formatZodIssues } from '../../data-schemas/issues';
import { TrainLoraInput, type TrainingProgress, type TrainLoraResult } from '../../data-schemas/training';
import { loadConfig } from '../../infra/config';
import { ensurePythonEnv } from '../../infra/python';
import { trainingProgressQuery } from '../../workflows';
import { positiveInt, positiveNumber } from '../options';
import { startAndFollow } from '../follow';

/** The run's id derives from its output: starting the same run twice attaches to the one going. */
export const trainWorkflowId = (input: TrainLoraInput): string => WorkflowIds.trainLora(input.outputUri);

export interface TrainCommandOptions {
  baseModel: string;
  out: string;
  maxSteps?: number;
  epochs: number;
  lr: number;
  rank: number;
  alpha: number;
  batchSize: number;
  gradAccum: number;
  precision: 'bf16' | 'fp16' | 'fp32';
  checkpointEvery: number;
  actionRepresentation: 'language' | 'action-tokens';
  gpus: number;
  wait: boolean;
}

/** Starts (or attaches to) a trainLora run and follows its progress query until it ends. */
export async function runTrain(shards: string, opts: TrainCommandOptions, say: (line: string) => void): Promise<TrainLoraResult | undefined> {
  // A local directory is made absolute (the GPU worker resolves it); anything else is a hub id.
  const baseModel = opts.baseModel.startsWith('.') || isAbsolute(opts.baseModel) ? resolve(opts.baseModel) : opts.baseModel;
  const parsed = TrainLoraInput.safeParse({
    shardsUri: toObjectUri(shards),
    baseModel,
    outputUri: toObjectUri(opts.out),
    epochs: opts.epochs,
    ...(opts.maxSteps !== undefined && { maxSteps: opts.maxSteps }),
    learningRate: opts.lr,
    lora: { rank: opts.rank, alpha: opts.alpha },
    perDeviceBatchSize: opts.batchSize,
    gradientAccumulationSteps: opts.gradAccum,
    precision: opts.precision,
    checkpointEvery: opts.checkpointEvery,
    actionRepresentation: opts.actionRepresentation,
    gpus: opts.gpus,
    progressEverySeconds: 2,
  });
  if (!parsed.success) throw new Error(`invalid training options: ${formatZodIssues(parsed.error).join('; ')}`);
  const input = parsed.data;
  return startAndFollow<TrainLoraResult, TrainingProgress>({
    workflowType: 'trainLora',
    workflowId: trainWorkflowId(input),
    input,
    wait: opts.wait,
    progress: {
      query: trainingProgressQuery,
      format: '  {bar} step {value}/{total} | loss {loss} | {tps} tok/s | {phase}',
      bar: (p) =>
        p.totalSteps > 0
          ? { value: p.step, total: p.totalSteps, payload: { loss: p.loss?.toFixed(4) ?? '-', tps: p.tokensPerSecond?.toFixed(0) ?? '-', phase: p.phase } }
          : undefined,
    },
    say,
  });
}

export function printTrainResult(result: TrainLoraResult, say: (line: string) => void): void {
  say(`  ${result.steps} steps, final loss ${result.finalLoss?.toFixed(4) ?? '-'}, ${result.attempts} attempt(s)${result.resumedFromStep ? `, resumed from step ${result.resumedFromStep}` : ''}`);
  say(`  adapter: ${result.adapterUri}`);
  say(`  result:  ${result.resultUri}`);
}

/** Builds the tiny test VLM (random weights, offline tokenizer and processor) into `dir`. */
export async function buildTinyModel(dir: string, cacheDir: string, log: (line: string) => void = () => {}): Promise<string> {
  const env = await ensurePythonEnv(cacheDir, log);
  const out = resolve(dir);
  await promisify(execFile)(env.python, ['-m', 'vla_py.tiny_model', '--out', out], { env: env.env });
  return out;
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('start trainLora on the stack (vla dev up) and follow it with a progress bar')
    .argument('<shards>', 'the shards.json of a shard set (vla shard), a path or URI')
    .requiredOption('--base-model <dir-or-id>', 'a model directory on the GPU worker, a hub id its machine can reach, or an s3:// model directory (staged once per machine)')
    .requiredOption('--out <uri-or-path>', 'run output: checkpoints, adapter, result')
    .option('--max-steps <n>', 'stop after N optimizer steps', positiveInt)
    .option('--epochs <n>', 'epochs', positiveNumber, 1)
    .option('--lr <rate>', 'AdamW learning rate (linear decay)', positiveNumber, 5e-5)
    .option('--rank <r>', 'LoRA rank', positiveInt, 16)
    .option('--alpha <a>', 'LoRA alpha', positiveNumber, 32)
    .option('--batch-size <n>', 'per-device batch size', positiveInt, 1)
    .option('--grad-accum <n>', 'gradient accumulation steps', positiveInt, 1)
    .addOption(new Option('--precision <p>', 'bf16 on GPUs, fp32 on a CPU').choices(['bf16', 'fp16', 'fp32']).default('bf16'))
    .option('--checkpoint-every <n>', 'optimizer steps between checkpoints', positiveInt, 500)
    .addOption(new Option('--action-representation <r>', 'language (VLM2VLA) or action-tokens (VLM2VLA-AT)').choices(['language', 'action-tokens']).default('language'))
    .option('--gpus <n>', 'GPUs of the worker to use (>1 launches with accelerate)', positiveInt, 1)
    .option('--no-wait', 'start it and return; watch it in the Web UI')
    .action(async (shards: string, opts: TrainCommandOptions) => {
      const say = (line: string): void => console.log(line);
      const result = await runTrain(shards, opts, say);
      if (result) printTrainResult(result, say);
    });
  program
    .command('tiny-model')
    .description('build the tiny test VLM (random weights; tokenizer and processor work offline) into a directory')
    .argument('<dir>', 'output directory')
    .action(async (dir: string) => {
      const out = await buildTinyModel(dir, loadConfig().cacheDir, (line) => console.log(line));
      console.log(`tiny VLM written to ${out}`);
    });
}
