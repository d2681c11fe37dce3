import { Client, type Connection } from '@temporalio/client';
import { DefaultLogger, type NativeConnection, Runtime, bundleWorkflowCode, type Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import getPort from 'get-port';
import { join } from 'node:path';
import { loadConfig } from '../infra/config';
import { connectClient, connectWorker, ensureTemporalCli, startDevServer, type DevServer } from '../infra/temporal';
import { WORKFLOWS_PATH } from '../workers/cpu';

/** What a benchmark tears down at its end, last started first; a failing step is reported and the rest still run. */
export class Cleanups {
  private readonly steps: { name: string; fn: () => Promise<void> }[] = [];

  add(name: string, fn: () => Promise<void>): void {
    this.steps.push({ name, fn });
  }

  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.fn();
      } catch (err) {
        console.error(`cleanup of ${step.name} failed: ${(err as Error).message}`);
      }
    }
  }
}

export interface BenchTemporal {
  server: DevServer;
  connection: Connection;
  native: NativeConnection;
  client: Client;
  workflowBundle: WorkflowBundleWithSourceMap;
}

/**
 * A benchmark's own Temporal dev server on free loopback ports (SQLite in `dbDir`, default `dir`),
 * a client, a worker connection and the workflow bundle, each registered in `cleanups`. Installs
 * the SDK runtime with a quiet logger, so call it before anything else talks to Temporal.
 */
export async function startBenchTemporal(options: { dir: string; dbDir?: string; namespace: string; cleanups: Cleanups; log: (line: string) => void }): Promise<BenchTemporal> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const server = await startDevServer({
    cli: await ensureTemporalCli(loadConfig().cacheDir, options.log),
    dbFile: join(options.dbDir ?? options.dir, 'temporal.sqlite'),
    logFile: join(options.dir, 'temporal.log'),
    namespace: options.namespace,
    port: await getPort({ host: '127.0.0.1' }),
    uiPort: await getPort({ host: '127.0.0.1' }),
  });
  options.cleanups.add(`temporal dev server (pid ${server.pid})`, () => server.stop());
  const connection = await connectClient(server.temporal);
  options.cleanups.add('client connection', () => connection.close());
  const native = await connectWorker(server.temporal);
  options.cleanups.add('worker connection', () => native.close());
  const client = new Client({ connection, namespace: options.namespace });
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
  return { server, connection, native, client, workflowBundle };
}

/** Runs a worker until the cleanups shut it down; a worker that dies is logged (the run it serves then fails or stalls). */
export function runBenchWorker(worker: Worker, cleanups: Cleanups, log: (line: string) => void): void {
  const run = worker.run();
  run.catch((err: unknown) => log(`worker ${worker.options.taskQueue} stopped: ${(err as Error).message}`));
  cleanups.add(`worker ${worker.options.taskQueue}`, async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await run.catch(() => undefined);
  });
}
