import type { ObjectStore } from '../../activities/store/types';
import type { InferencePool } from '../../activities/vqa/backends/pool';
import type { PythonEnv } from '../../activities/runtime/python-env';
import { createCpuWorker } from '../../workers/cpu';
import { createGpuWorker } from '../../workers/gpu';
import { uniqueTaskQueue, workflowBundle, type TemporalTestEnv } from './temporal';

export interface TestWorkerOptions {
  store: ObjectStore;
  /** The GPU worker's scratch (staged shards, trainers, adapters). */
  workDir: string;
  python: PythonEnv;
  /** @default 'test-revision' */
  gitRevision?: string;
  killGraceMs?: number;
  /** The GPU worker's loaded-model bound. @default the worker's default (one model) */
  inferencePool?: InferencePool;
}

/** A CPU worker (workflows + CPU activities) on a fresh task queue named after `name`, running while `fn` runs. */
export async function withCpuWorker<T>(env: TemporalTestEnv, store: ObjectStore, name: string, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = uniqueTaskQueue(name);
  const worker = await createCpuWorker({ connection: env.nativeConnection, namespace: env.namespace, taskQueue, workflowBundle: await workflowBundle(), deps: { store } });
  return worker.runUntil(fn(taskQueue));
}

/**
 * A CPU worker (workflows + CPU activities) and a GPU worker (training, local inference), each on
 * its own fresh task queue, running while `fn` runs.
 */
export async function withCpuAndGpuWorkers<T>(env: TemporalTestEnv, options: TestWorkerOptions, fn: (queues: { cpu: string; gpu: string }) => Promise<T>): Promise<T> {
  const queues = { cpu: uniqueTaskQueue('cpu'), gpu: uniqueTaskQueue('gpu') };
  const cpu = await createCpuWorker({ connection: env.nativeConnection, namespace: env.namespace, taskQueue: queues.cpu, workflowBundle: await workflowBundle(), deps: { store: options.store } });
  const gpu = await createGpuWorker({
    connection: env.nativeConnection,
    clientConnection: env.client.connection,
    namespace: env.namespace,
    taskQueue: queues.gpu,
    deps: {
      store: options.store,
      workDir: options.workDir,
      pythonEnv: () => Promise.resolve(options.python),
      gitRevision: options.gitRevision ?? 'test-revision',
      ...(options.killGraceMs !== undefined && { killGraceMs: options.killGraceMs }),
      ...(options.inferencePool !== undefined && { inferencePool: options.inferencePool }),
    },
  });
  return cpu.runUntil(gpu.runUntil(fn(queues)));
}
