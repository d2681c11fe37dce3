/**
 * The steps of the trainLora activity as the small functions they are (activities/training/*):
 * the trainer config, the launch, the event stream and its outcome, and the run's files in a real
 * FileStore. The whole activity runs against a real trainer in test/integration/train-lora.test.ts.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { downloadLastCheckpoint, readShardManifest, recordRunConfig, uploadCheckpoint } from '../../activities/training/run-files';
import { portableBaseModelName, trainerConfigFileText, trainerConfigFor } from '../../activities/training/trainer-config';
import { tensorboardHint } from '../../cli/commands/train';
import { parseTrainerEventLine, progressAfter, TrainerEventLog, trainerFailure } from '../../activities/training/trainer-events';
import { trainerLaunchArgs } from '../../activities/training/trainer-process';
import { FileStore, InvalidObjectError } from '../../activities/store';
import { PYTHON_SCHEMA_DIR, TrainerConfig } from '../../data-schemas/python-border';
import { CheckpointMarker, TrainingFailure, TrainingRunConfig, TrainLoraInput, type TrainingProgress } from '../../data-schemas/training';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { REPO_ROOT } from '../../infra/config';

const dir = mkdtempSync(join(tmpdir(), 'vla-training-steps-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const store = new FileStore();

const input = TrainLoraInput.parse({ shardsUri: 's3://data/shards/shards.json', baseModel: 'google/gemma-3-4b-it', outputUri: 's3://runs/r1' });
const local = { trainShards: ['/w/shards/a.tar'], validationShards: [], outputDir: '/w/runs/x/output', resumeFrom: null, gitRevision: 'abc' };

describe('the trainer config', () => {
  it('writes every field, filled from the input\'s defaults (the only ones)', () => {
    const config = trainerConfigFor(input, local);
    const schema = JSON.parse(readFileSync(join(REPO_ROOT, PYTHON_SCHEMA_DIR, 'trainer-config.schema.json'), 'utf8')) as { required: string[] };
    expect(Object.keys(config)).toEqual(schema.required);
    expect(config).toMatchObject({ learningRate: 5e-5, lora: { rank: 16, alpha: 32, dropout: 0.05, targetModules: null }, maxSteps: null, precision: 'bf16', checkpointEvery: 500, resumeFrom: null });
    expect(config.modelCard).toEqual({ runUri: 's3://runs/r1', shardsUri: 's3://data/shards/shards.json', gitRevision: 'abc', baseModel: 'google/gemma-3-4b-it' });
    expect(trainerConfigFor(input, { ...local, baseModelDir: '/w/models/m' }).baseModel).toBe('/w/models/m');
    expect(TrainerConfig.parse(JSON.parse(trainerConfigFileText(config)))).toEqual(config);
  });

  it('evaluates at the checkpoints unless evalEvery says otherwise', () => {
    expect(trainerConfigFor(input, local).evalEvery).toBe(500);
    expect(trainerConfigFor(TrainLoraInput.parse({ ...input, evalEvery: 50 }), local).evalEvery).toBe(50);
  });

  it('names the base model portably: the name given, a hub id, the hub id of a hub cache folder, else the model as given', () => {
    expect(trainerConfigFor(input, local).baseModelName).toBe('google/gemma-3-4b-it');
    // An s3:// base is staged to a local folder: the trainer loads that, the adapter names the URI.
    const staged = trainerConfigFor(TrainLoraInput.parse({ ...input, baseModel: 's3://models/gemma' }), { ...local, baseModelDir: '/w/models/3f2a' });
    expect([staged.baseModel, staged.baseModelName]).toEqual(['/w/models/3f2a', 's3://models/gemma']);
    expect(portableBaseModelName({ baseModel: '/home/me/.cache/huggingface/hub/models--google--gemma-3-4b-it/snapshots/093f9f3/' })).toBe('google/gemma-3-4b-it');
    expect(portableBaseModelName({ baseModel: '/models/gemma', baseModelName: 'google/gemma-3-4b-it' })).toBe('google/gemma-3-4b-it');
    expect(portableBaseModelName({ baseModel: '/models/gemma' })).toBe('/models/gemma');
  });

  it('refuses what the trainer would refuse, before the trainer starts', () => {
    const refused = (() => {
      try {
        return trainerConfigFor(input, { ...local, trainShards: [] });
      } catch (err) {
        return err;
      }
    })();
    expect(refused).toBeInstanceOf(ApplicationFailure);
    expect(refused).toMatchObject({ type: TrainingFailure.badConfig, nonRetryable: true, message: expect.stringContaining('trainShards') as string });
  });
});

describe('the launch', () => {
  it('runs the trainer module directly on one GPU, through accelerate on several', () => {
    expect(trainerLaunchArgs({ gpus: 1, distributed: 'deepspeed-zero2', precision: 'bf16' })).toEqual(['-m', 'vla_py.train']);
    expect(trainerLaunchArgs({ gpus: 0, distributed: 'ddp', precision: 'fp32' })).toEqual(['-m', 'vla_py.train']);
    expect(trainerLaunchArgs({ gpus: 4, distributed: 'deepspeed-zero2', precision: 'bf16' })).toEqual([
      '-m', 'accelerate.commands.launch', '--num_processes', '4', '--use_deepspeed', '--zero_stage', '2', '--mixed_precision', 'bf16', '-m', 'vla_py.train',
    ]);
    expect(trainerLaunchArgs({ gpus: 2, distributed: 'fsdp', precision: 'fp32' })).toEqual(['-m', 'accelerate.commands.launch', '--num_processes', '2', '--use_fsdp', '-m', 'vla_py.train']);
    expect(trainerLaunchArgs({ gpus: 2, distributed: 'ddp', precision: 'fp16' })).toContain('--multi_gpu');
  });
});

describe('the event stream', () => {
  const step = { event: 'step', step: 3, totalSteps: 10, epoch: 0.3, loss: 1.5, lr: 1e-4, tokensPerSecond: 100, etaSeconds: 7 };

  it('parses the trainer\'s event lines and nothing else', () => {
    expect(parseTrainerEventLine(JSON.stringify(step))).toEqual(step);
    expect(parseTrainerEventLine('Loading checkpoint shards: 100%')).toBeUndefined();
    expect(parseTrainerEventLine(JSON.stringify({ ...step, loss: 'high' }))).toBeUndefined();
    expect(parseTrainerEventLine(JSON.stringify({ event: 'unknown' }))).toBeUndefined();
  });

  it('moves the progress on start, step and eval events only', () => {
    const progress: TrainingProgress = { phase: 'training', attempt: 2, step: 0, totalSteps: 0 };
    expect(progressAfter(progress, { event: 'start', totalSteps: 10, resumedFromStep: 4, trainableParameters: 1, totalParameters: 2, samples: 3 })).toEqual({ ...progress, step: 4, totalSteps: 10 });
    expect(progressAfter(progress, parseTrainerEventLine(JSON.stringify(step))!)).toEqual({ ...progress, step: 3, totalSteps: 10, loss: 1.5, lr: 1e-4, tokensPerSecond: 100, etaSeconds: 7 });
    expect(progressAfter(progress, parseTrainerEventLine(JSON.stringify({ event: 'eval', step: 3, loss: 1.25 }))!)).toEqual({ ...progress, evalLoss: 1.25, evalStep: 3 });
    expect(progressAfter(progress, { event: 'checkpoint', step: 3, dir: '/x' })).toBeUndefined();
  });

  it('is done only with exit code 0 and a done event', () => {
    const log = new TrainerEventLog();
    log.record(parseTrainerEventLine(JSON.stringify(step))!);
    expect(log.outcome({ code: 0, signal: null, cancelled: false, stderr: [] })).toMatchObject({ kind: 'failed', code: 0 });
    log.record({ event: 'eval', step: 3, loss: 1.25 });
    log.record({ event: 'done', step: 3, adapterDir: '/a', metrics: { train_loss: 1 } });
    expect(log.outcome({ code: 0, signal: null, cancelled: false, stderr: [] })).toMatchObject({ kind: 'done', steps: [step], evals: [{ event: 'eval', step: 3, loss: 1.25 }], done: { adapterDir: '/a' } });
    expect(log.outcome({ code: 1, signal: null, cancelled: false, stderr: [] }).kind).toBe('failed');
    expect(log.outcome({ code: null, signal: 'SIGTERM', cancelled: true, stderr: [] }).kind).toBe('cancelled');
  });

  it('turns a failed trainer into the failure no retry can fix, or a retried one', () => {
    const failed = (error?: { code: string; message: string; shard?: string }, signal: NodeJS.Signals | null = null) =>
      trainerFailure({ kind: 'failed', code: signal ? null : 2, signal, ...(error && { error: { event: 'error' as const, ...error } }), stderr: ['last line'] }, new Map([['/w/shards/abc.tar', 'train/shard-000001.tar']]));
    const cases: [ApplicationFailure, string, boolean][] = [
      [failed({ code: 'base_model_not_found', message: 'm' }), TrainingFailure.baseModelNotFound, true],
      [failed({ code: 'out_of_memory', message: 'm' }), TrainingFailure.outOfMemory, true],
      [failed({ code: 'corrupt_shard', message: 'm', shard: '/w/shards/abc.tar' }), TrainingFailure.corruptShard, true],
      [failed({ code: 'bad_config', message: 'config.lora.rank must be integer' }), TrainingFailure.badConfig, true],
      [failed({ code: 'interrupted', message: 'm' }), TrainingFailure.trainerKilled, false],
      [failed(undefined, 'SIGKILL'), TrainingFailure.trainerKilled, false],
      [failed({ code: 'crash', message: 'm' }), TrainingFailure.trainerCrashed, false],
    ];
    for (const [failure, type, nonRetryable] of cases) expect([failure.type, failure.nonRetryable]).toEqual([type, nonRetryable]);
    expect(cases[2]![0].message).toContain('train/shard-000001.tar');
    expect(cases[3]![0].message).toContain('config.lora.rank');
  });
});

describe('the TensorBoard hint of vla train', () => {
  it('opens a local run\'s event files in place and fetches an s3:// run\'s first', () => {
    expect(tensorboardHint(fileUri('/data/runs/r 1'))).toEqual(['  TensorBoard: tensorboard --logdir /data/runs/r 1/tensorboard']);
    expect(tensorboardHint('s3://runs/exp/r1')[0]).toBe('  TensorBoard: aws s3 sync s3://runs/exp/r1/tensorboard ./r1-tensorboard && tensorboard --logdir ./r1-tensorboard');
  });
});

describe('the run\'s files in the store', () => {
  const outputUri = fileUri(join(dir, 'run'));

  it('refuses a shard set that is not there', async () => {
    const err = await readShardManifest(store, fileUri(join(dir, 'nothing', 'shards.json'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe(TrainingFailure.shardsNotFound);
  });

  it('records the run config once and refuses another input at the same output', async () => {
    const runInput = TrainLoraInput.parse({ ...input, outputUri });
    await recordRunConfig(store, runInput, 'rev1', 'a'.repeat(64));
    // Another attempt of the same run (only how progress is reported differs) goes on.
    await recordRunConfig(store, { ...runInput, progressEverySeconds: 5 }, 'rev2', 'a'.repeat(64));
    const stored = TrainingRunConfig.parse(JSON.parse(readFileSync(join(dir, 'run', 'config.json'), 'utf8')));
    expect(stored).toMatchObject({ input: runInput, gitRevision: 'rev1', shardsManifestSha256: 'a'.repeat(64) });
    const mismatch = await recordRunConfig(store, { ...runInput, learningRate: 1e-4 }, 'rev1', 'a'.repeat(64)).catch((e: unknown) => e);
    expect((mismatch as ApplicationFailure).type).toBe(TrainingFailure.runConfigMismatch);
    const otherShards = await recordRunConfig(store, runInput, 'rev1', 'b'.repeat(64)).catch((e: unknown) => e);
    expect((otherShards as ApplicationFailure).type).toBe(TrainingFailure.runConfigMismatch);
  });

  it('resumes from the marked checkpoint with the highest step, each file checked', async () => {
    const checkpoint = (step: number): string => {
      const local = join(dir, 'local', `ckpt-${step}`);
      mkdirSync(join(local, 'sub'), { recursive: true });
      writeFileSync(join(local, 'adapter_model.safetensors'), `weights at ${step}`);
      writeFileSync(join(local, 'sub', 'trainer_state.json'), `{"step": ${step}}`);
      return local;
    };
    expect(await downloadLastCheckpoint(store, outputUri, join(dir, 'resume0'))).toBeUndefined();
    const marker = await uploadCheckpoint(store, { outputUri, localDir: checkpoint(3), step: 3, attempt: 1 });
    await uploadCheckpoint(store, { outputUri, localDir: checkpoint(12), step: 12, attempt: 2 });
    expect(marker.files.map((f) => f.path)).toEqual(['adapter_model.safetensors', 'sub/trainer_state.json']);
    expect(CheckpointMarker.parse(JSON.parse(readFileSync(join(dir, 'run', 'checkpoints', 'checkpoint-00000012.json'), 'utf8')))).toMatchObject({ step: 12, attempt: 2 });
    // Files of a later checkpoint whose marker was never written are not resumed from.
    mkdirSync(join(dir, 'run', 'checkpoints', 'checkpoint-00000020'), { recursive: true });
    writeFileSync(join(dir, 'run', 'checkpoints', 'checkpoint-00000020', 'adapter_model.safetensors'), 'partial');

    const resumed = await downloadLastCheckpoint(store, outputUri, join(dir, 'resume1'));
    expect(resumed).toEqual({ step: 12, dir: join(dir, 'resume1', 'checkpoint-00000012') });
    expect(readFileSync(join(resumed!.dir, 'sub', 'trainer_state.json'), 'utf8')).toBe('{"step": 12}');

    writeFileSync(join(dir, 'run', 'checkpoints', 'checkpoint-00000012', 'adapter_model.safetensors'), 'tampered');
    const err = await downloadLastCheckpoint(store, outputUri, join(dir, 'resume2')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidObjectError);
    expect((err as Error).message).toContain(joinUri(outputUri, 'checkpoints', 'checkpoint-00000012.json'));
  });
});
