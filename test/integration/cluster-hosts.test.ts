import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MULTI_HOST_NEEDS_S3 } from '../../data-schemas/config';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { hostPaths, killHost, listHosts, spawnInHost, startHost, stopHost, waitForHostReady } from '../../infra/cluster/hosts';
import { addHost, canUseNamespaces, destroyNetwork, ensureNetwork, listNamespaces, type NetworkRecord } from '../../infra/cluster/network';
import { stopProcess } from '../../activities/runtime/processes';
import { ensureVersitygw, startS3Server, type S3Server } from '../../infra/s3-server';
import { ensureTemporalCli, startDevServer, type DevServer } from '../../infra/temporal';
import { startGeminiHost, type GeminiHost } from '../helpers/gemini-host';
import { workflowBundle } from '../helpers/temporal';

const TSX = join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
const API_KEY = 'AIzaTEST-key-cluster-hosts-0000000000001';
const BUCKET = 'vla-cluster';
const NAMESPACE = 'vla-cluster';
/** Each Gemini answer waits this long: a host killed when its first call arrives dies with calls in flight. */
const GEMINI_LATENCY_MS = 4_000;
const TASKS = ['put the carrot on the plate', 'pick up the eggplant', 'put the spoon on the towel'];
const PER_TASK = 3;


/** Waits for a line of the child's stdout that `pick` accepts (the deadline only bounds a broken run). */
function collectLines(child: ChildProcess): { lines: string[]; exited: Promise<number> } {
  const lines: string[] = [];
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    partial += chunk.toString('utf8');
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal !== null ? 128 : 1)));
  });
  return { lines, exited };
}

const reasonToSkip = canUseNamespaces() ? undefined : 'needs root and iproute2 (ip netns) to give each host its own network and mount namespace';

const TITLE = 'workers on separate hosts: network and mount namespaces, data only through s3:// (real Temporal, versitygw, Gemini wire server on a private LAN)';

describe.runIf(reasonToSkip === undefined)(reasonToSkip === undefined ? TITLE : `${TITLE}: skipped, ${reasonToSkip}`, () => {
  let dir: string;
  let stateDir: string;
  let network: NetworkRecord;
  let temporal: DevServer | undefined;
  let s3: S3Server | undefined;
  let gemini: GeminiHost | undefined;
  let hostEnv: NodeJS.ProcessEnv;
  let clientEnv: NodeJS.ProcessEnv;
  let tornDown = false;

  async function teardown(): Promise<void> {
    if (tornDown) return;
    tornDown = true;
    for (const h of listHosts(stateDir)) await stopHost(stateDir, h.record.name, { graceMs: 5_000 });
    if (gemini !== undefined) await stopProcess(gemini.pid, { group: true, graceMs: 2_000 });
    await s3?.stop();
    await temporal?.stop();
    await destroyNetwork(stateDir);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vla-cluster-hosts-'));
    stateDir = join(dir, 'state');
    network = await ensureNetwork(stateDir);
    const lan = network.lan.address;
    const { cacheDir } = loadConfig();
    temporal = await startDevServer({
      cli: await ensureTemporalCli(cacheDir),
      dbFile: join(dir, 'temporal', 'temporal.sqlite'),
      logFile: join(dir, 'temporal', 'temporal.log'),
      namespace: NAMESPACE,
      ip: lan,
      port: 7233,
      uiPort: 8233,
      netns: network.lan.netns,
      readyTimeoutMs: 120_000,
    });
    s3 = await startS3Server({ binary: await ensureVersitygw({ cacheDir }), dataDir: join(dir, 's3', 'data'), bindIp: lan, port: 7070, netns: network.lan.netns });

    // The model host: the Gemini wire server on the LAN, logging every request with the address that sent it.
    gemini = await startGeminiHost({ dir, netns: network.lan.netns, host: lan, port: 8080, apiKey: API_KEY, latencyMs: GEMINI_LATENCY_MS });

    // Webpack is the slow part of a worker start: the hosts share one prebuilt bundle.
    const bundleFile = join(dir, 'workflow-bundle.js');
    writeFileSync(bundleFile, (await workflowBundle()).code);
    const s3Env = { AWS_ENDPOINT_URL_S3: s3.endpoint, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: s3.region };
    const connection = { TEMPORAL_ADDRESS: `${lan}:7233`, TEMPORAL_NAMESPACE: NAMESPACE };
    hostEnv = {
      PATH: process.env.PATH,
      ...connection,
      ...s3Env,
      VLA_STORE_URI: `s3://${BUCKET}`,
      VLA_WORKFLOW_BUNDLE: bundleFile,
      GEMINI_API_KEY: API_KEY,
      GOOGLE_GEMINI_BASE_URL: `http://${lan}:8080`,
      // Not for hosts: proves a host does not get the caller's whole environment.
      VLA_TEST_CANARY: 'must-not-reach-a-host',
    };
    clientEnv = { PATH: process.env.PATH, ...connection, ...s3Env, VLA_STORE_URI: `s3://${BUCKET}`, VLA_CACHE_DIR: cacheDir };
    await startHost(stateDir, { name: 'cpu1', kind: 'cpu' }, { env: hostEnv });
    await startHost(stateDir, { name: 'gem1', kind: 'gemini', workerArgs: ['--rate', '50'] }, { env: hostEnv });
    await startHost(stateDir, { name: 'gem2', kind: 'gemini', workerArgs: ['--rate', '50'] }, { env: hostEnv });
    await Promise.all(['cpu1', 'gem1', 'gem2'].map((name) => waitForHostReady(stateDir, name)));
    await addHost(stateDir, 'client');
  }, 300_000);

  afterAll(async () => {
    await teardown().catch((err: unknown) => console.error(`cluster-hosts teardown: ${String(err)}`));
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('the network is idempotent: making it or a host again returns what exists', async () => {
    const again = await ensureNetwork(stateDir);
    expect({ id: again.id, subnet: again.subnet, lan: again.lan }).toEqual({ id: network.id, subnet: network.subnet, lan: network.lan });
    expect(Object.keys(again.hosts).sort()).toEqual(['client', 'cpu1', 'gem1', 'gem2']);
    expect(await addHost(stateDir, 'client')).toEqual(again.hosts.client);
    expect(new Set(Object.values(again.hosts).map((h) => h.address)).size).toBe(4);
  });

  it('each host runs in its own network namespace with only the environment it needs', () => {
    const hosts = listHosts(stateDir);
    expect(hosts.map((h) => [h.record.name, h.record.kind, h.state])).toEqual([
      ['cpu1', 'cpu', 'ours'],
      ['gem1', 'gemini', 'ours'],
      ['gem2', 'gemini', 'ours'],
    ]);
    const addresses = new Set(hosts.map((h) => h.record.address));
    expect(addresses.size).toBe(3);
    for (const h of hosts) {
      expect(h.record.isolation).toBe('namespaces');
      expect(execFileSync('ip', ['netns', 'identify', String(h.pid)], { encoding: 'utf8' }).trim()).toBe(h.record.netns);
      const environ = readFileSync(`/proc/${h.pid}/environ`, 'utf8').split('\0');
      expect(environ).toContain('VLA_MULTI_HOST=1');
      expect(environ).toContain(`VLA_STATE_DIR=${h.dir}`);
      expect(environ).toContain(`TEMPORAL_ADDRESS=${network.lan.address}:7233`);
      expect(environ.some((v) => v.startsWith('VLA_TEST_CANARY='))).toBe(false);
      // Model keys only where model calls happen.
      expect(environ.some((v) => v.startsWith('GEMINI_API_KEY='))).toBe(h.record.kind === 'gemini');
    }
  });

  it("a host cannot read another host's scratch, and sees its own", () => {
    const gem1 = hostPaths(stateDir, 'gem1');
    const gem2 = hostPaths(stateDir, 'gem2');
    writeFileSync(join(gem2.dir, 'secret.txt'), 'gem2 only');
    writeFileSync(join(gem1.dir, 'own.txt'), 'gem1 own');
    const pid = listHosts(stateDir).find((h) => h.record.name === 'gem1')!.pid!;
    const inGem1 = (...command: string[]): string => execFileSync('nsenter', ['--target', String(pid), '--mount', '--', ...command], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(() => inGem1('cat', join(gem2.dir, 'secret.txt'))).toThrow(/No such file/);
    expect(inGem1('ls', '-A', gem1.hostsDir).split('\n').filter(Boolean)).toEqual(['gem1']);
    expect(inGem1('cat', join(gem1.dir, 'own.txt'))).toBe('gem1 own');
    // The machine itself still sees both.
    expect(readFileSync(join(gem2.dir, 'secret.txt'), 'utf8')).toBe('gem2 only');
  });

  it(
    'relabels through s3:// with the Gemini labeler; a Gemini host SIGKILLed mid-call loses nothing and labels nothing twice',
    async () => {
      const datasetUri = `s3://${BUCKET}/d-rob/sim`;
      const outputUri = `s3://${BUCKET}/d-lan/sim`;
      const driver = spawnInHost(stateDir, 'client', TSX, [join(REPO_ROOT, 'test', 'fixtures', 'cluster', 'driver.ts'), JSON.stringify({ bucket: BUCKET, datasetUri, outputUri, tasks: TASKS, perTask: PER_TASK, geminiHosts: 2, maxConcurrent: 6 })], {
        env: clientEnv,
        stdio: 'pipe',
      });
      let stderr = '';
      driver.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const { lines, exited } = collectLines(driver);
      const addressOf = (name: string): string => listHosts(stateDir).find((h) => h.record.name === name)!.record.address!;
      const hostAt = new Map(['gem1', 'gem2'].map((name) => [addressOf(name), name]));

      // Kill the Gemini host whose call arrives first, the moment it arrives (the answer takes
      // GEMINI_LATENCY_MS): that call is in flight. Which host the server hands the first task to
      // is the server's choice, so the victim is whichever got it.
      let victim: string | undefined;
      let exitCode: number | undefined;
      void exited.then((code) => (exitCode = code));
      while (exitCode === undefined) {
        if (victim === undefined) {
          const first = gemini!.requests().find((e) => e.event === 'arrived' && hostAt.has(String(e.from)));
          if (first) {
            victim = hostAt.get(String(first.from))!;
            expect(killHost(stateDir, victim).kind).toBe('stopped');
          }
        }
        await sleep(100);
      }
      expect(exitCode, `driver failed:\n${stderr}`).toBe(0);
      expect(victim, 'no Gemini host received a call, so the kill tested nothing').toBeDefined();
      expect(listHosts(stateDir).find((h) => h.record.name === victim)!.state).not.toBe('ours');
      const victimAddress = addressOf(victim!);
      const survivorAddress = addressOf(victim === 'gem1' ? 'gem2' : 'gem1');

      const started = JSON.parse(lines.find((l) => l.includes('"event":"started"'))!) as { ids: string[] };
      const done = JSON.parse(lines.find((l) => l.includes('"event":"done"'))!) as { result: { counts: Record<string, number> }; records: string[] };
      const total = TASKS.length * PER_TASK;
      expect(started.ids).toHaveLength(total);
      expect(done.result.counts).toEqual({ total, done: total, skipped: 0, quarantined: 0, failed: 0 });
      // One D_lan record per trajectory, in the S3 store.
      expect(done.records.map((uri) => uri.slice(`${outputUri}/records/`.length)).sort()).toEqual(started.ids.map((id) => `${id}.json`).sort());

      // Per trajectory (its prompt): every call the victim took died with it, and the survivor answered each trajectory exactly once.
      const answered = gemini!.requests().filter((e) => e.event === 'answered');
      const prompts = new Set(answered.map((e) => e.prompt));
      expect(prompts.size).toBe(total);
      for (const prompt of prompts) expect(answered.filter((e) => e.prompt === prompt && e.from === survivorAddress), `prompt ${String(prompt)}`).toHaveLength(1);
      expect(answered.filter((e) => e.from === victimAddress).length).toBeGreaterThan(0);
      expect(answered.every((e) => e.from === victimAddress || e.from === survivorAddress)).toBe(true);
    },
    600_000,
  );

  it(`the vla CLI on a host refuses a file:// dataset: "${MULTI_HOST_NEEDS_S3}"`, async () => {
    const child = spawnInHost(stateDir, 'client', TSX, [join(REPO_ROOT, 'cli', 'main.ts'), 'relabel', join(dir, 'local-dataset')], { env: clientEnv, stdio: 'pipe' });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const { exited } = collectLines(child);
    expect(await exited).toBe(1);
    expect(stderr).toContain(MULTI_HOST_NEEDS_S3);
    expect(stderr).toContain(`file://${join(dir, 'local-dataset')}`);
  }, 120_000);

  it('down removes every namespace it created, and only those', async () => {
    const before = await listNamespaces();
    const ours = [network.lan.netns, ...['cpu1', 'gem1', 'gem2', 'client'].map((name) => `vla-${network.id}-${name}`)];
    expect(before).toEqual(expect.arrayContaining(ours));
    await teardown();
    const after = await listNamespaces();
    expect(after.filter((ns) => ns.startsWith(`vla-${network.id}-`))).toEqual([]);
    expect(after.sort()).toEqual(before.filter((ns) => !ours.includes(ns)).sort());
    expect(existsSync(join(stateDir, 'cluster', 'network.json'))).toBe(false);
  }, 120_000);
});
