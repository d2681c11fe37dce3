import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createCpuActivities, createGeminiActivities } from '../../activities';
import { FileStore, getJson, putJson } from '../../activities/store';
import { createVqaRuntime } from '../../activities/vqa/activities';
import { createNightlyActivities } from '../../activities/vqa/nightly';
import { TaskQueue, type QueueFor } from '../../data-schemas/activity-contract';
import { INVALID_ACTIVITY_INPUT } from '../../data-schemas/failures';
import { fileUri, joinUri } from '../../data-schemas/uri';
import {
  NightRecord,
  NightlyActivities,
  NightlyEvaluationInput,
  NightlyState,
  VqaInferenceActivities,
  VqaStoreActivities,
  VqaStoreFile,
  VqaSweepInput,
  type VqaSweepRequest,
} from '../../data-schemas/vqa';
import { applicationFailureOf } from '../helpers/failures';

const dir = mkdtempSync(join(tmpdir(), 'vqa-contracts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const store = new FileStore();


const sweepMinimum = { models: [{ name: 'm', backend: 'openai', baseUrl: 'http://127.0.0.1:1/v1', model: 'm' }], benchmarks: [{ benchmark: 'ai2d', uri: fileUri(dir) }], outputUri: fileUri(join(dir, 'out')) };

describe('VQA task queues', () => {
  it('default to the project queue of the kind of worker that serves each backend', () => {
    expect(VqaSweepInput.parse(sweepMinimum).taskQueues).toEqual({ openai: TaskQueue.cpu, gemini: TaskQueue.gemini, local: TaskQueue.gpu });
    const nightly = NightlyEvaluationInput.parse({ runsUri: fileUri(join(dir, 'runs')), outputUri: fileUri(join(dir, 'nightly')), benchmarks: sweepMinimum.benchmarks });
    expect(nightly.localTaskQueue).toBe(TaskQueue.gpu);
  });

  it('carry their worker kind in the type (checked by tsc: each line below must not compile)', () => {
    // @ts-expect-error a Gemini queue is no queue of the local backend
    const local: VqaSweepInput['taskQueues']['local'] = TaskQueue.gemini;
    // @ts-expect-error the sweep's store activities run on CPU workers only
    const storeQueue: QueueFor<typeof VqaStoreActivities> = TaskQueue.gpu;
    // @ts-expect-error a child sweep's local backend takes a GPU queue
    const request: VqaSweepRequest = { ...sweepMinimum, taskQueues: { local: TaskQueue.gemini } };
    const inferenceQueues: QueueFor<typeof VqaInferenceActivities>[] = [TaskQueue.cpu, TaskQueue.gemini, TaskQueue.gpu];
    expect([local, storeQueue, request.taskQueues?.local, inferenceQueues.length]).toEqual(['vla-gemini', 'vla-gpu', 'vla-gemini', 3]);
  });
});

describe('VQA activity contracts', () => {
  it('are registered in full by the workers that serve them', () => {
    const names = (contract: { activities: object }): string[] => Object.keys(contract.activities);
    const cpu = Object.keys(createCpuActivities({ store }));
    expect(cpu).toEqual(expect.arrayContaining([...names(VqaStoreActivities), ...names(VqaInferenceActivities), ...names(NightlyActivities)]));
    expect(Object.keys(createGeminiActivities({ store }))).toEqual(expect.arrayContaining(names(VqaInferenceActivities)));
    expect(Object.keys(createVqaRuntime({ store }).inference('gpu')).sort()).toEqual(names(VqaInferenceActivities).sort());
  });

  it('refuse an input of the wrong shape at the border, naming the field, before any work', async () => {
    const { store: vqaStore, inference } = createVqaRuntime({ store });
    const outputUri = fileUri(join(dir, 'sweep'));
    const scope = { outputUri, itemsUri: joinUri(outputUri, 'items', 'ai2d', 'x'), model: 'm', modelKey: 'not-a-key', benchmark: 'ai2d' as const };
    const pending = await applicationFailureOf(vqaStore.pendingItems(scope));
    expect(pending.type).toBe(INVALID_ACTIVITY_INPUT);
    expect(pending.nonRetryable).toBe(true);
    expect(pending.message).toMatch(/^pendingItems: invalid input: .*modelKey/);
    const predict = await applicationFailureOf(inference('cpu').predictItems({ ...scope, modelKey: 'a'.repeat(64), model: sweepMinimum.models[0]!, itemIds: ['q1'], concurrency: 0 } as never));
    expect(predict.type).toBe(INVALID_ACTIVITY_INPUT);
    expect(predict.message).toMatch(/concurrency/);
  });
});

describe('nightly store files', () => {
  const nightly = createNightlyActivities({ store });

  it('recordNight writes last.json and nights/<night>.json in their declared formats, which read back', async () => {
    const outputUri = fileUri(join(dir, 'nightly-ok'));
    const state = { resultUri: fileUri(join(dir, 'runs/r1/result.json')), resultEtag: 'e1', reportUri: joinUri(outputUri, 'runs/r1/report.html'), evaluatedAt: '2026-12-07T03:00:00.000Z' };
    await nightly.recordNight({ outputUri, night: '2026-12-07', status: 'evaluated', run: 'r1', state });
    expect(await nightly.readNightlyState({ outputUri })).toEqual(state);
    expect(await getJson(store, joinUri(outputUri, VqaStoreFile.nightlyState), NightlyState)).toEqual(state);
    const record = await getJson(store, joinUri(outputUri, VqaStoreFile.nights, '2026-12-07.json'), NightRecord);
    expect(record).toMatchObject({ night: '2026-12-07', status: 'evaluated', run: 'r1' });
  });

  it('recordNight refuses a status or night no reader would accept, and writes nothing', async () => {
    const outputUri = fileUri(join(dir, 'nightly-bad'));
    const failure = await applicationFailureOf(nightly.recordNight({ outputUri, night: '7 Dec', status: 'done' } as never));
    expect(failure.type).toBe(INVALID_ACTIVITY_INPUT);
    expect(failure.message).toMatch(/night/);
    expect(failure.message).toMatch(/status/);
    expect(await store.head(joinUri(outputUri, VqaStoreFile.nights, '7 Dec.json'))).toBeUndefined();
  });

  it('readNightlyState names last.json and the bad field when the stored state is not a NightlyState', async () => {
    const outputUri = fileUri(join(dir, 'nightly-corrupt'));
    await putJson(store, joinUri(outputUri, VqaStoreFile.nightlyState), { resultUri: 'nowhere', resultEtag: 'e', reportUri: fileUri(dir), evaluatedAt: 'x' });
    const failure = await applicationFailureOf(nightly.readNightlyState({ outputUri }));
    expect(failure.message).toContain(VqaStoreFile.nightlyState);
    expect(failure.message).toMatch(/resultUri/);
  });
});
