import getPort from 'get-port';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../infra/config';
import { ensureTemporalCli, startDevServer } from '../../infra/temporal';

declare module 'vitest' {
  export interface ProvidedContext {
    temporal: { address: string; namespace: string; uiUrl: string; logFile: string };
  }
}

/** One real Temporal dev server for the suite, on free loopback ports, torn down by PID. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'vla-temporal-'));
  const cli = await ensureTemporalCli(loadConfig().cacheDir, (line) => console.log(`[temporal] ${line}`));
  const server = await startDevServer({
    cli,
    dbFile: join(dir, 'temporal.sqlite'),
    logFile: join(dir, 'temporal.log'),
    namespace: 'vla-test',
    port: await getPort({ host: '127.0.0.1' }),
    uiPort: await getPort({ host: '127.0.0.1' }),
  });
  project.provide('temporal', { address: server.address, namespace: server.namespace, uiUrl: server.uiUrl, logFile: server.logFile });
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
