import { NativeConnection, type Worker } from '@temporalio/worker';
import { Argument, Command } from 'commander';
import { createObjectStore } from '../../activities/store';
import { loadConfig } from '../../infra/config';
import { createCpuWorker } from '../../workers/cpu';
import { createGeminiWorker } from '../../workers/gemini';
import { positiveInt } from '../options';

export const WORKER_KINDS = ['cpu', 'gemini'] as const;
export type WorkerKind = (typeof WORKER_KINDS)[number];

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a worker in the foreground (SIGINT/SIGTERM shut it down gracefully)')
    .addArgument(new Argument('<kind>', 'cpu: workflows and CPU activities; gemini: model calls under the global rate limit').choices(WORKER_KINDS))
    .option('--task-queue <name>', 'poll this task queue instead of the default (vla-cpu / vla-gemini)')
    .option('--rate <calls-per-second>', 'gemini: the server-side rate limit of the queue, for all its workers together', positiveInt, 5)
    .action(async (kind: WorkerKind, opts: { taskQueue?: string; rate: number }) => {
      const config = loadConfig();
      const connection = await NativeConnection.connect({ address: config.temporalAddress });
      try {
        const store = createObjectStore();
        const common = { connection, namespace: config.namespace, ...(opts.taskQueue !== undefined && { taskQueue: opts.taskQueue }) };
        // The key is read here, in the worker that calls Gemini, and nowhere else.
        const apiKey = process.env.GEMINI_API_KEY ?? process.env.GOOGLE_API_KEY;
        const baseUrl = process.env.GOOGLE_GEMINI_BASE_URL;
        const worker: Worker =
          kind === 'cpu'
            ? await createCpuWorker({ ...common, deps: { store } })
            : await createGeminiWorker({
                ...common,
                deps: { store, gemini: { ...(apiKey !== undefined && { apiKey }), ...(baseUrl !== undefined && { baseUrl }) } },
                maxCallsPerSecond: opts.rate,
              });
        await worker.run();
      } finally {
        await connection.close();
      }
    });
}
