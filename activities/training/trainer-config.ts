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

/**
 * The trainer's config file (python/vla_py/train/config.py reads it): the parsed input, whose
 * defaults are the only ones, plus this machine's paths. Every field is written (the Python side
 * defaults nothing), and it is checked against TrainerConfig before the trainer ever sees it
 * (a non-retryable BadTrainerConfig naming the field otherwise).
 */
export function trainerConfigFor(input: TrainLoraInput, local: TrainerLocalPaths): TrainerConfig {
  const config = TrainerConfig.safeParse({
    baseModel: local.baseModelDir ?? input.baseModel,
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
