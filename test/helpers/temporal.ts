import { Client } from '@temporalio/client';
import { DefaultLogger, type NativeConnection, Runtime, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../infra/config';
import { connectClient, connectWorker } from '../../infra/temporal';
import { localDevServerConnection } from '../../infra/temporal-connection';
import { inject } from 'vitest';
import { WORKFLOWS_PATH } from '../../workers/cpu';

let runtimeInstalled = false;
/** Quiets the SDK's runtime logger: test output shows failures, not worker chatter. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('ERROR') });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** Bundles the workflows once per test file (webpack is the slow part of a worker start). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
  return bundle;
}

export interface TemporalTestEnv {
  client: Client;
  nativeConnection: NativeConnection;
  namespace: string;
  close(): Promise<void>;
}

/** Client and worker connection to the suite's dev server (started by test/setup/temporal.ts). */
export async function connectTestTemporal(): Promise<TemporalTestEnv> {
  quietRuntime();
  const { address, namespace } = inject('temporal');
  const settings = localDevServerConnection(address, namespace);
  const connection = await connectClient(settings);
  const nativeConnection = await connectWorker(settings);
  return {
    client: new Client({ connection, namespace }),
    nativeConnection,
    namespace,
    async close() {
      await connection.close();
      await nativeConnection.close();
    },
  };
}

/**
 * The environment for a child process (a CLI worker, `vla dev`) that must reach a dev server the
 * tests started, whatever Temporal profile or TEMPORAL_* variables the person running the tests
 * has: an empty config file, no TLS, no API key.
 */
export function devServerEnv(address: string, namespace: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('TEMPORAL_') && name !== 'TEMPORAL_CLI_PATH') delete env[name];
  return { ...env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, TEMPORAL_CONFIG_FILE: '/dev/null' };
}

/** A task queue no other test shares. */
export function uniqueTaskQueue(name: string): string {
  return `test-${name}-${randomUUID().slice(0, 8)}`;
}

export const HISTORIES_DIR = join(REPO_ROOT, 'test', 'fixtures', 'histories');

/**
 * With VLA_RECORD_HISTORIES=1, keeps a workflow's history for test/integration/replay.test.ts,
 * which replays every recorded history against the current workflow code.
 */
export async function recordHistory(env: TemporalTestEnv, name: string, workflowId: string, runId?: string): Promise<void> {
  if (process.env.VLA_RECORD_HISTORIES !== '1') return;
  const history = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
  writeFileSync(join(HISTORIES_DIR, `${name}.json`), `${historyToJSON(history)}\n`);
  // Histories do not hold their workflow id; workflows that derive ids from it replay with it.
  writeFileSync(join(HISTORIES_DIR, `${name}.workflow-id`), `${workflowId}\n`);
}
