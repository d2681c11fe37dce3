import { Client, Connection } from '@temporalio/client';
import getPort from 'get-port';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startProcess, stopProcess } from '../../activities/runtime/processes';
import { SEARCH_ATTRIBUTE_NAMES } from '../../data-schemas/workflows';
import { loadConfig } from '../../infra/config';
import { checkNamespaceReady, checkTemporalConnection, ensureTemporalCli, indexedValueType, startDevServer } from '../../infra/temporal';
import { localDevServerConnection } from '../../infra/temporal-connection';
import { VlaExperiment, VlaState, VlaVariants } from '../../workflows/search-attributes';
import { quietRuntime, uniqueTaskQueue } from '../helpers/temporal';

/** The namespace's custom search attributes, name to IndexedValueType, as the operator service lists them. */
async function registered(address: string, namespace: string): Promise<Record<string, unknown>> {
  const connection = await Connection.connect({ address });
  try {
    return (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
  } finally {
    await connection.close();
  }
}

const expectedTypes = (): Record<string, number> => Object.fromEntries(SEARCH_ATTRIBUTE_NAMES.map((name) => [name, indexedValueType(name)]));

describe('search attributes on the dev server', () => {
  let dir: string;

  beforeAll(() => {
    quietRuntime();
    dir = mkdtempSync(join(tmpdir(), 'vla-search-attributes-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('the suite server registers every attribute with its type (VlaVariants as KeywordList) and stores and finds a list value', async () => {
    const { address, namespace } = inject('temporal');
    const attributes = await registered(address, namespace);
    expect(Object.fromEntries(SEARCH_ATTRIBUTE_NAMES.map((name) => [name, attributes[name]]))).toEqual(expectedTypes());
    expect(attributes.VlaVariants).toBe(7); // INDEXED_VALUE_TYPE_KEYWORD_LIST

    // The server takes a list value for VlaVariants and the Web UI's filter finds it (no worker: the run just waits).
    const connection = await Connection.connect({ address });
    const client = new Client({ connection, namespace });
    const workflowId = `search-attributes-${uniqueTaskQueue('list')}`;
    const handle = await client.workflow.start('experiment', {
      workflowId,
      taskQueue: uniqueTaskQueue('no-worker'),
      args: [],
      typedSearchAttributes: [
        { key: VlaExperiment, value: 'tiny' },
        { key: VlaVariants, value: ['vlm2vla', 'vlm2vla-at'] },
        { key: VlaState, value: 'running' },
      ],
    });
    try {
      expect((await handle.describe()).typedSearchAttributes.get(VlaVariants)).toEqual(['vlm2vla', 'vlm2vla-at']);
      const query = `WorkflowId = '${workflowId}' AND VlaExperiment = 'tiny' AND VlaVariants IN ('vlm2vla-at') AND VlaState = 'running'`;
      let found: string | undefined;
      for (let attempt = 0; attempt < 240 && found === undefined; attempt++) {
        for await (const w of client.workflow.list({ query })) found = w.workflowId;
        if (found === undefined) await sleep(500);
      }
      expect(found).toBe(workflowId);
    } finally {
      await handle.terminate('test done');
      await connection.close();
    }
  }, 180_000);

  it('a database from before the newest attributes: the check names what is missing or mistyped, and the server adds the missing ones, with their types, when it starts on it again', async () => {
    const cli = await ensureTemporalCli(loadConfig().cacheDir);
    const dbFile = join(dir, 'old.sqlite');
    const namespace = 'vla-old';
    const port = await getPort({ host: '127.0.0.1' });
    const uiPort = await getPort({ host: '127.0.0.1' });
    const address = `127.0.0.1:${port}`;

    // The namespace as an older checkout created it: its five Keyword attributes only. A second
    // namespace gets the new ones by hand, VlaVariants with the wrong type.
    const mistyped = 'vla-mistyped';
    const oldAttributes = ['VlaDataset', 'VlaStage', 'VlaModel', 'VlaRetentionGate', 'VlaWaitingOn'];
    const old = startProcess(cli, ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort), '--db-filename', dbFile, '--namespace', namespace, '--namespace', mistyped, '--log-level', 'warn', ...oldAttributes.flatMap((name) => ['--search-attribute', `${name}=Keyword`])], { logFile: join(dir, 'old.log') });
    try {
      let ready = false;
      for (let attempt = 0; attempt < 240 && !ready; attempt++) {
        ready = await checkTemporalConnection(localDevServerConnection(address, namespace), { timeoutMs: 2_000 }).then(() => true, () => false);
        if (!ready) await sleep(500);
      }
      expect(ready).toBe(true);
      expect(Object.keys(await registered(address, namespace)).filter((name) => name.startsWith('Vla')).sort()).toEqual([...oldAttributes].sort());
      const connection = await Connection.connect({ address });
      try {
        await expect(checkNamespaceReady(connection, namespace)).rejects.toThrow('search attributes not registered: VlaExperiment, VlaVariants, VlaState');
        await connection.operatorService.addSearchAttributes({ namespace: mistyped, searchAttributes: { VlaExperiment: indexedValueType('VlaExperiment'), VlaVariants: indexedValueType('VlaState'), VlaState: indexedValueType('VlaState') } });
        await expect(checkNamespaceReady(connection, mistyped)).rejects.toThrow('search attribute VlaVariants is registered as Keyword, the project needs KeywordList');
      } finally {
        await connection.close();
      }
    } finally {
      await stopProcess(old.pid);
    }

    const server = await startDevServer({ cli, dbFile, logFile: join(dir, 'new.log'), namespace, port, uiPort, readyTimeoutMs: 120_000 });
    try {
      const attributes = await registered(server.address, namespace);
      expect(Object.fromEntries(SEARCH_ATTRIBUTE_NAMES.map((name) => [name, attributes[name]]))).toEqual(expectedTypes());
    } finally {
      await server.stop();
    }
  }, 300_000);
});
