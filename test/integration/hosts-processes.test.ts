import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hostPaths, killHost, listHosts, startHost, stopHost, waitForHostReady } from '../../infra/cluster/hosts';
import { isAlive, processIdentity } from '../../activities/runtime/processes';
import { closedPort } from '../helpers/net';
import { workflowBundle } from '../helpers/temporal';

/**
 * The fallback where namespaces are not available (not root): a host is a separate process tree
 * on loopback with its own environment and scratch. Runs everywhere; the namespace version is
 * test/integration/cluster-hosts.test.ts.
 */
describe("worker hosts without namespaces (isolation 'processes', the suite's dev server and S3 server)", () => {
  let dir: string;
  let stateDir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vla-hosts-processes-'));
    stateDir = join(dir, 'state');
    const bundleFile = join(dir, 'workflow-bundle.js');
    writeFileSync(bundleFile, (await workflowBundle()).code);
    const { address, namespace } = inject('temporal');
    const s3 = inject('s3');
    env = {
      PATH: process.env.PATH,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: namespace,
      VLA_STORE_URI: `s3://${s3.bucket}/hosts-processes`,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      VLA_WORKFLOW_BUNDLE: bundleFile,
      VLA_TEST_CANARY: 'must-not-reach-a-host',
    };
  });
  afterAll(async () => {
    for (const h of listHosts(stateDir)) await stopHost(stateDir, h.record.name, { graceMs: 5_000 });
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts a host that runs with its own scratch and environment; kill takes its whole process group', async () => {
    const record = await startHost(stateDir, { name: 'cpu1', kind: 'cpu', workerArgs: ['--task-queue', `hosts-processes-${Date.now()}`] }, { env, isolation: 'processes' });
    expect(record).toMatchObject({ name: 'cpu1', kind: 'cpu', isolation: 'processes' });
    expect(record.netns).toBeUndefined();
    await waitForHostReady(stateDir, 'cpu1');
    const [host] = listHosts(stateDir);
    expect(host).toMatchObject({ state: 'ours', dir: hostPaths(stateDir, 'cpu1').dir });
    const pid = host!.pid!;
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    expect(environ).toContain(`VLA_STATE_DIR=${hostPaths(stateDir, 'cpu1').dir}`);
    expect(environ).toContain('VLA_MULTI_HOST=1');
    expect(environ.some((v) => v.startsWith('VLA_TEST_CANARY='))).toBe(false);
    // tsx runs the worker in a child process: the group holds both, and both go.
    const group = listGroup(pid);
    expect(group.length).toBeGreaterThan(1);
    expect(killHost(stateDir, 'cpu1')).toEqual({ kind: 'stopped', pid });
    await waitUntil(() => group.every((member) => !isAlive(member)));
    expect(listHosts(stateDir)[0]!.state).toBe('stale');
  }, 180_000);

  it('a host whose worker cannot start is reported with the end of its log', async () => {
    await startHost(stateDir, { name: 'broken', kind: 'cpu' }, { env: { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${await closedPort()}` }, isolation: 'processes' });
    await expect(waitForHostReady(stateDir, 'broken')).rejects.toThrow(/host broken: its worker exited during start-up; last lines of .*host-broken\.log:\n[\s\S]*nothing answers at .*UNREACHABLE/);
  }, 180_000);
});

/** Every live process in the process group `pgid` leads. */
function listGroup(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => processIdentity(pid)?.pgrp === pgid);
}

async function waitUntil(done: () => boolean, deadlineMs = 30_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!done()) {
    if (Date.now() > until) throw new Error('gave up waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
