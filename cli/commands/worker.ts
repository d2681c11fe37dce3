import { NativeConnection } from '@temporalio/worker';
import { Command } from 'commander';
import { createObjectStore } from '../../activities/store';
import { loadConfig } from '../../infra/config';
import { createCpuWorker } from '../../workers/cpu';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a worker in the foreground (SIGINT/SIGTERM shut it down gracefully)')
    .argument('<kind>', 'cpu')
    .action(async (kind: string) => {
      if (kind !== 'cpu') throw new Error(`unknown worker kind "${kind}"; available: cpu`);
      const config = loadConfig();
      const connection = await NativeConnection.connect({ address: config.temporalAddress });
      try {
        const worker = await createCpuWorker({ connection, namespace: config.namespace, deps: { store: createObjectStore() } });
        await worker.run();
      } finally {
        await connection.close();
      }
    });
}
