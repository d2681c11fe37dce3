import { WorkflowIds } from '../../data-schemas/workflow-ids';
import type { Command } from 'commander';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { basename, isAbsolute, resolve } from 'node:path';
import { promisify } from 'node:util';
import { toObjectUri } from '../../activities/store';
import { formatZodIssues } from '../../data-schemas/issues';
import { TENSORBOARD_DIR, TrainLoraInput, type TrainingProgress, type TrainLoraResult } from '../../data-schemas/training';
import { joinUri } from '../../data-schemas/uri';
import { loadConfig } from '../../infra/config';
import { ensurePythonEnv } from '../../infra/python';
import { trainingProgressQuery } from '../../workflows';
import type { z } from 'zod';
import { SchemaOption } from '../options';
import { startAndFollow } from '../follow';

/** Options left out are undefined: the workflow's parse applies the schema's defaults. */
export interface TrainCommandOptions {
  /** A hub id, an object URI, or a local directory made absolute (the option does it). */
  baseModel: string;
  baseModelName?: string;
  out: string;
  maxSteps?: number;
  epochs?: number;
  lr?: number;
  rank?: number;
  alpha?: number;
  batchSize?: number;
  gradAccum?: number;
  precision?: TrainLoraInput['precision'];
  checkpointEvery?: number;
  evalEvery?: number;
  actionRepresentation?: TrainLoraInput['actionRepresentation'];
  gpus?: number;
  wait: boolean;
}

/** A local directory is made absolute (the GPU worker resolves it); anything else is a hub id or a URI. */
function modelRef(value: string): string {
  return value.startsWith('.') || isAbsolute(value) ? resolve(value) : value;
}

/** The trainLora input the options ask for, and nothing more: what they leave out the workflow defaults. */
export function trainInput(shards: string, opts: Omit<TrainCommandOptions, 'wait'>): z.input<typeof TrainLoraInput> {
  const lora = { ...(opts.rank !== undefined && { rank: opts.rank }), ...(opts.alpha !== undefined && { alpha: opts.alpha }) };
  return {
    shardsUri: toObjectUri(shards),
    baseModel: opts.baseModel,
    ...(opts.baseModelName !== undefined && { baseModelName: opts.baseModelName }),
    outputUri: toObjectUri(opts.out),
    ...(opts.epochs !== undefined && { epochs: opts.epochs }),
    ...(opts.maxSteps !== undefined && { maxSteps: opts.maxSteps }),
    ...(opts.lr !== undefined && { learningRate: opts.lr }),
    ...(Object.keys(lora).length > 0 && { lora }),
    ...(opts.batchSize !== undefined && { perDeviceBatchSize: opts.batchSize }),
    ...(opts.gradAccum !== undefined && { gradientAccumulationSteps: opts.gradAccum }),
    ...(opts.precision !== undefined && { precision: opts.precision }),
    ...(opts.checkpointEvery !== undefined && { checkpointEvery: opts.checkpointEvery }),
    ...(opts.evalEvery !== undefined && { evalEvery: opts.evalEvery }),
    ...(opts.actionRepresentation !== undefined && { actionRepresentation: opts.actionRepresentation }),
    ...(opts.gpus !== undefined && { gpus: opts.gpus }),
    // Not the schema's default: a terminal's progress bar wants fresher numbers than the Web UI does.
    progressEverySeconds: 2,
  };
}

/**
 * How to open a run's TensorBoard event files (`<outputUri>/tensorboard`): in place for a file://
 * run; an s3:// run's are fetched first (the AWS CLI reads AWS_ENDPOINT_URL_S3 like the workers do).
 */
export function tensorboardHint(outputUri: string): string[] {
  const uri = joinUri(outputUri, TENSORBOARD_DIR);
  if (uri.startsWith('file://')) return [`  TensorBoard: tensorboard --logdir ${fileURLToPath(uri)}`];
  const local = `./${basename(outputUri.replace(/\/+$/, ''))}-${TENSORBOARD_DIR}`;
  return [`  TensorBoard: aws s3 sync ${uri} ${local} && tensorboard --logdir ${local}`, '               (the event files are uploaded with every checkpoint; sync again for newer ones)'];
}

/** The progress bar's eval column: the last validation loss, or why there is none. */
function evalColumn(p: TrainingProgress): string {
  if (p.validation === false) return 'none (no validation split)';
  return p.evalLoss !== undefined ? `${p.evalLoss.toFixed(4)} @${p.evalStep ?? '?'}` : '-';
}

/** Starts (or attaches to) a trainLora run and follows its progress query until it ends. */
export async function runTrain(shards: string, opts: TrainCommandOptions, say: (line: string) => void): Promise<TrainLoraResult | undefined> {
  const input = trainInput(shards, opts);
  const parsed = TrainLoraInput.safeParse(input);
  if (!parsed.success) throw new Error(`invalid training options: ${formatZodIssues(parsed.error).join('; ')}`);
  for (const line of tensorboardHint(parsed.data.outputUri)) say(line);
  return startAndFollow<TrainLoraResult, TrainingProgress>({
    workflowType: 'trainLora',
    workflowId: WorkflowIds.trainLora(parsed.data.outputUri),
    input,
    wait: opts.wait,
    progress: {
      query: trainingProgressQuery,
      format: '  {bar} step {value}/{total} | loss {loss} | eval loss {evalLoss} | {tps} tok/s | {phase}',
      bar: (p) =>
        p.totalSteps > 0
          ? { value: p.step, total: p.totalSteps, payload: { loss: p.loss?.toFixed(4) ?? '-', evalLoss: evalColumn(p), tps: p.tokensPerSecond?.toFixed(0) ?? '-', phase: p.phase } }
          : undefined,
    },
    say,
  });
}

export function printTrainResult(result: TrainLoraResult, say: (line: string) => void): void {
  say(`  ${result.steps} steps, final loss ${result.finalLoss?.toFixed(4) ?? '-'}, ${result.attempts} attempt(s)${result.resumedFromStep ? `, resumed from step ${result.resumedFromStep}` : ''}`);
  if (result.metrics.eval_loss !== undefined) say(`  final validation loss ${result.metrics.eval_loss.toFixed(4)}`);
  say(`  adapter: ${result.adapterUri}`);
  say(`  result:  ${result.resultUri}`);
  if (result.tensorboardUri) for (const line of tensorboardHint(result.runUri)) say(line);
}

/** Builds the tiny test VLM (random weights, offline tokenizer and processor) into `dir`. */
export async function buildTinyModel(dir: string, cacheDir: string, log: (line: string) => void = () => {}): Promise<string> {
  const env = await ensurePythonEnv(cacheDir, log);
  const out = resolve(dir);
  await promisify(execFile)(env.python, ['-m', 'vla_py.tiny_model', '--out', out], { env: env.env });
  return out;
}

export function registerTrain(program: Command): void {
  const fields = TrainLoraInput.shape;
  const lora = fields.lora.unwrap().shape;
  program
    .command('train')
    .description('start trainLora on the stack (vla dev up) and follow it with a progress bar')
    .argument('<shards>', 'the shards.json of a shard set (vla shard), a path or URI')
    .addOption(new SchemaOption('--base-model <dir-or-id>', fields.baseModel, { coerce: modelRef }).makeOptionMandatory())
    .addOption(new SchemaOption('--base-model-name <name>', fields.baseModelName))
    .requiredOption('--out <uri-or-path>', 'run output: checkpoints, adapter, result')
    .addOption(new SchemaOption('--max-steps <n>', fields.maxSteps))
    .addOption(new SchemaOption('--epochs <n>', fields.epochs))
    .addOption(new SchemaOption('--lr <rate>', fields.learningRate))
    .addOption(new SchemaOption('--rank <r>', lora.rank))
    .addOption(new SchemaOption('--alpha <a>', lora.alpha))
    .addOption(new SchemaOption('--batch-size <n>', fields.perDeviceBatchSize))
    .addOption(new SchemaOption('--grad-accum <n>', fields.gradientAccumulationSteps))
    .addOption(new SchemaOption('--precision <p>', fields.precision))
    .addOption(new SchemaOption('--checkpoint-every <n>', fields.checkpointEvery))
    .addOption(new SchemaOption('--eval-every <n>', fields.evalEvery))
    .addOption(new SchemaOption('--action-representation <r>', fields.actionRepresentation))
    .addOption(new SchemaOption('--gpus <n>', fields.gpus))
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
