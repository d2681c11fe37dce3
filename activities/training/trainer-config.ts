import { ApplicationFailure } from '@temporalio/activity';
import { describeZodIssues } from '../../data-schemas/issues';
import { TrainerConfig } from '../../data-schemas/python-border';
import { TrainingFailure, type TrainLoraInput } from '../../data-schemas/training';

/** This machine's side of a trainer config: staged files and the trainer's local output. */
export interface TrainerLocalPaths {
  trainShards: string[];
  validationShards: string[];
  outputDir: string;
  /** A local checkpoint directory to resume from; null starts fresh. */
  resumeFrom: string | null;
  gitRevision: string;
  /** Where an s3:// base model was staged on this machine; the input's model otherwise. */
  baseModelDir?: string;
}

/** A folder of the Hugging Face hub cache: `.../models--<org>--<name>/snapshots/<revision>`. */
const HUB_CACHE_SNAPSHOT = /(?:^|\/)models--([^/]+?)--([^/]+)\/snapshots\/[^/]+\/?$/;

/**
 * The name an adapter records for its base model (adapter_config.json `base_model_name_or_path`),
 * so that it loads on another machine: the name the input gives, else the hub id the base model
 * is (or was downloaded from, for a folder of the hub cache), else the base model as given.
 */
export function portableBaseModelName(input: Pick<TrainLoraInput, 'baseModel' | 'baseModelName'>): string {
  if (input.baseModelName !== undefined) return input.baseModelName;
  const snapshot = HUB_CACHE_SNAPSHOT.exec(input.baseModel.replace(/^file:\/\//, ''));
  return snapshot ? `${snapshot[1]}/${snapshot[2]}` : input.baseModel;
}

/**
 * The trainer's config file (python/vla_py/train/config.py reads it): the parsed input, whose
 * defaults are the only ones, plus this machine's paths. Every field is written (the Python side
 * defaults nothing), and it is checked against TrainerConfig before the trainer ever sees it
 * (a non-retryable BadTrainerConfig naming the field otherwise).
 */
export function trainerConfigFor(input: TrainLoraInput, local: TrainerLocalPaths): TrainerConfig {
  const config = TrainerConfig.safeParse({
    baseModel: local.baseModelDir ?? input.baseModel,
    baseModelName: portableBaseModelName(input),
    trainShards: local.trainShards,
    validationShards: local.validationShards,
    outputDir: local.outputDir,
    resumeFrom: local.resumeFrom,
    lora: { rank: input.lora.rank, alpha: input.lora.alpha, dropout: input.lora.dropout, targetModules: input.lora.targetModules ?? null },
    learningRate: input.learningRate,
    warmupSteps: input.warmupSteps,
    weightDecay: input.weightDecay,
    epochs: input.epochs,
    maxSteps: input.maxSteps ?? null,
    perDeviceBatchSize: input.perDeviceBatchSize,
    gradientAccumulationSteps: input.gradientAccumulationSteps,
    precision: input.precision,
    maxSequenceLength: input.maxSequenceLength,
    seed: input.seed,
    checkpointEvery: input.checkpointEvery,
    evalEvery: input.evalEvery ?? input.checkpointEvery,
    actionRepresentation: input.actionRepresentation,
    gpus: input.gpus,
    distributed: input.distributed,
    modelCard: { runUri: input.outputUri, shardsUri: input.shardsUri, gitRevision: local.gitRevision, baseModel: input.baseModel },
  } satisfies TrainerConfig);
  if (!config.success) {
    // The same failure as the trainer refusing it, without starting the trainer.
    throw ApplicationFailure.nonRetryable(`the trainer config would be invalid: ${describeZodIssues(config.error)}`, TrainingFailure.badConfig);
  }
  return config.data;
}

/** The trainer config file as written: pretty JSON, one trailing newline. */
export const trainerConfigFileText = (config: TrainerConfig): string => `${JSON.stringify(config, null, 2)}\n`;
