import { Client } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileUri } from '../../data-schemas/uri';
import { TaskQueue } from '../../data-schemas/workflows';
import { REPO_ROOT } from '../../infra/config';
import { inspectPidFile, isAlive } from '../../activities/runtime/processes';
import { connectClient } from '../../infra/temporal';
import { localDevServerConnection } from '../../infra/temporal-connection';
import { devServerEnv } from '../helpers/temporal';

const run = promisify(execFile);

/** `vla dev up|status|logs|down` as a user runs them: real child processes, real PIDs. */
describe('vla dev', () => {
  let stateDir: string;
  let env: NodeJS.ProcessEnv;
  let address: string;
  const vla = (...args: string[]) =>
    run(join(REPO_ROOT, 'cli', 'vla.sh'), args, { env, cwd: REPO_ROOT, timeout: 180_000 }).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
    );

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'vla-dev-'));
    address = `127.0.0.1:${await getPort({ host: '127.0.0.1' })}`;
    env = {
      ...devServerEnv(address, 'vla'),
      VLA_STATE_DIR: stateDir,
      VLA_TEMPORAL_UI_PORT: String(await getPort({ host: '127.0.0.1' })),
    };
  });
  afterAll(async () => {
    await vla('dev', 'down');
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('starts the server and a worker, survives a restart with every workflow, and stops by PID', async () => {
    const up = await vla('dev', 'up');
    expect(up.code, up.out).toBe(0);
    expect(up.out).toMatch(/Temporal Web UI: http:\/\/127\.0\.0\.1:\d+\/namespaces\/vla\/workflows/);
    const pidOf = (component: string): number | undefined => {
      const state = inspectPidFile(join(stateDir, 'pids', `${component}.pid`));
      return state.kind === 'ours' ? state.record.pid : undefined;
    };
    const temporalPid = pidOf('temporal');
    const workerPid = pidOf('worker-cpu');
    expect(temporalPid && isAlive(temporalPid)).toBe(true);
    expect(workerPid && isAlive(workerPid)).toBe(true);

    const status = await vla('dev', 'status');
    expect(status.code, status.out).toBe(0);
    expect(status.out).toContain('temporal health: ok');

    // The detached worker really serves the project's task queue, in its store (<state>/store, its default root).
    const outputUri = fileUri(join(stateDir, 'store', 'smoke.txt'));
    const connection = await connectClient(localDevServerConnection(address, 'vla'));
    const client = new Client({ connection, namespace: 'vla' });
    const result = await client.workflow.execute('storeSmoke', { taskQueue: TaskQueue.cpu, workflowId: 'dev-stack-smoke', args: [{ outputUri, text: 'persisted' }] });
    expect(result.created).toBe(true);
    await connection.close();

    const down = await vla('dev', 'down');
    expect(down.code, down.out).toBe(0);
    expect(isAlive(temporalPid!)).toBe(false);
    expect(isAlive(workerPid!)).toBe(false);
    const stopped = await vla('dev', 'status');
    expect(stopped.code).toBe(1);
    expect(stopped.out).toMatch(/temporal\s+stopped/);

    // SQLite persistence: the completed workflow is still there after a restart.
    const again = await vla('dev', 'up', '--no-worker');
    expect(again.code, again.out).toBe(0);
    const connection2 = await connectClient(localDevServerConnection(address, 'vla'));
    const described = await new Client({ connection: connection2, namespace: 'vla' }).workflow.getHandle('dev-stack-smoke').describe();
    expect(described.status.name).toBe('COMPLETED');
    await connection2.close();

    const logs = await vla('dev', 'logs', 'temporal', '-n', '5');
    expect(logs.code).toBe(0);
    const badLogs = await vla('dev', 'logs', 'nope');
    expect(badLogs.code).not.toBe(0);
    expect(badLogs.out).toContain('Allowed choices are temporal, worker-cpu, worker-gemini');
    // Two stack starts and eight CLI runs (each a fresh tsx process): 56-63 s on an idle 2-core
    // machine, so the default 60 s limit failed whenever another job shared it; 300 s leaves ~5x.
  }, 300_000);
});
