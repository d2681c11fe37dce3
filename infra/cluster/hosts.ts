import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { SafeId } from '../../data-schemas/common';
import { loadConfig, refuseLocalStore, REPO_ROOT } from '../config';
import { inspectPidFile, processIdentity, startProcess, stopByPidFile, tailFile, writePidFile, type PidFileState, type StopOutcome, type StopWaits } from '../../activities/runtime/processes';
import { addHost, canUseNamespaces, ensureNetwork, HostName, readNetwork } from './network';

/**
 * Worker "hosts": each worker of the cluster profile runs as if on its own machine. With root, a
 * host is a process tree in its own network namespace (joined to the cluster LAN, see
 * network.ts) and its own mount namespace in which the other hosts' folders are hidden; it gets
 * only the environment it needs and its own scratch folder `<state>/cluster/hosts/<name>/`.
 * Without root there are no namespaces: a host is then a separate process tree on loopback with
 * its own environment and scratch (`isolation: 'processes'`), and nothing hides one host's
 * folder from another.
 */

export const HOST_KINDS = ['cpu', 'gemini', 'gpu', 'station'] as const;
export const HostKind = z.enum(HOST_KINDS);
export type HostKind = z.infer<typeof HostKind>;

export const HostIsolation = z.enum(['namespaces', 'processes']);
export type HostIsolation = z.infer<typeof HostIsolation>;

export const HostSpec = z
  .strictObject({
    name: HostName,
    kind: HostKind,
    /** station hosts: the station id (the worker polls vla-station-<id>). */
    stationId: SafeId.optional(),
    /** More arguments for `vla worker <kind>` (e.g. `--rate 50`, `--task-queue q`). */
    workerArgs: z.array(z.string()).default([]),
  })
  .refine((spec) => (spec.kind === 'station') === (spec.stationId !== undefined), { message: 'a station host needs --station-id, and only a station host takes one', path: ['stationId'] });
export type HostSpec = z.input<typeof HostSpec>;

/** What `vla host start` recorded about a host, next to its folder. */
export const HostRecord = z.strictObject({
  name: HostName,
  kind: HostKind,
  stationId: SafeId.optional(),
  isolation: HostIsolation,
  /** The network namespace and address (isolation 'namespaces'). */
  netns: z.string().optional(),
  address: z.ipv4().optional(),
  /** The worker's argv after the interpreter, as recorded in the PID file. */
  argv: z.array(z.string()).min(1),
});
export type HostRecord = z.infer<typeof HostRecord>;

export interface HostPaths {
  /** All hosts' folders; hidden (but for its own) inside each host's mount namespace. */
  hostsDir: string;
  /** The host's scratch: its VLA_STATE_DIR and VLA_WORK_DIR. */
  dir: string;
  recordFile: string;
  pidFile: string;
  logFile: string;
  /** An empty folder outside hostsDir where the host's own folder is held while hostsDir is covered. */
  stageDir: string;
}

export function hostPaths(stateDir: string, name: string): HostPaths {
  const cluster = join(stateDir, 'cluster');
  const hostsDir = join(cluster, 'hosts');
  return {
    hostsDir,
    dir: join(hostsDir, name),
    recordFile: join(hostsDir, `${name}.json`),
    pidFile: join(cluster, 'pids', `host-${name}.pid`),
    logFile: join(cluster, 'logs', `host-${name}.log`),
    stageDir: join(cluster, 'mnt', name),
  };
}

/**
 * Variables a host inherits from the environment that starts it: connection, store and S3
 * settings, and per kind the model keys its activities read. Everything else (the caller's whole
 * environment) stays behind.
 */
const INHERITED = [/^TEMPORAL_/, /^AWS_/, /^VLA_STORE_(URI|ROOTS|READ_ROOTS)$/, /^VLA_METRICS_ADDRESS$/, /^VLA_WORKFLOW_BUNDLE$/, /^(PATH|LANG|LC_ALL|TZ)$/];
const INHERITED_BY_KIND: Record<HostKind, RegExp[]> = {
  cpu: [/^OPENAI_API_KEY$/],
  gemini: [/^GEMINI_API_KEY$/, /^GOOGLE_API_KEY$/, /^GOOGLE_GEMINI_BASE_URL$/],
  gpu: [/^VLA_INFERENCE_/, /^CUDA_VISIBLE_DEVICES$/, /^HF_/],
  station: [/^OPENAI_API_KEY$/],
};

/** The environment a host's worker gets (never the caller's whole environment). */
export function hostEnvironment(kind: HostKind, paths: Pick<HostPaths, 'dir'>, parent: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const keep = [...INHERITED, ...INHERITED_BY_KIND[kind]];
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(parent)) if (value !== undefined && keep.some((pattern) => pattern.test(key))) env[key] = value;
  return {
    ...env,
    // Shared, read-only tools (Python venvs, the temporal CLI) stay where the caller keeps them.
    VLA_CACHE_DIR: loadConfig(parent).cacheDir,
    VLA_STATE_DIR: paths.dir,
    VLA_WORK_DIR: join(paths.dir, 'work'),
    HOME: paths.dir,
    VLA_MULTI_HOST: '1',
  };
}

/**
 * The shell step run inside the host's fresh mount namespace: hold the host's own folder at the
 * stage, cover the hosts folder with an empty tmpfs, put the own folder back, exec the worker.
 */
const HIDE_OTHER_HOSTS = [
  'set -e',
  'own="$1"; stage="$2"; hosts="$3"; name="$4"; shift 4',
  'mount --bind "$own" "$stage"',
  'mount -t tmpfs -o mode=0755,size=1m vla-hosts "$hosts"',
  'mkdir "$hosts/$name"',
  'mount --bind "$stage" "$hosts/$name"',
  'umount "$stage"',
  'exec "$@"',
].join('\n');

const TSX = join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
const CLI_MAIN = join(REPO_ROOT, 'cli', 'main.ts');

function readRecord(file: string): HostRecord | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = HostRecord.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file} is not a host record: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  return parsed.data;
}

export interface StartHostOptions {
  /** Where the host's inherited variables come from. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** @default 'namespaces' when running as root with `ip`, else 'processes' */
  isolation?: HostIsolation;
}

/**
 * Starts a worker host: `vla worker <kind>` as its own process group, with a PID file that records
 * its identity. A host already running (by its PID file) is left as it is and returned.
 */
export async function startHost(stateDir: string, spec: HostSpec, options: StartHostOptions = {}): Promise<HostRecord> {
  const parsed = HostSpec.safeParse(spec);
  if (!parsed.success) throw new Error(`invalid host: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  const { name, kind, stationId, workerArgs } = parsed.data;
  const paths = hostPaths(stateDir, name);
  const state = inspectPidFile(paths.pidFile);
  if (state.kind === 'ours') {
    const record = readRecord(paths.recordFile);
    if (record) return record;
  }
  if (state.kind === 'unverifiable' && state.alive) throw new Error(`host ${name}: ${state.reason}; stop that process yourself, then delete ${paths.pidFile}`);

  const isolation = options.isolation ?? (canUseNamespaces() ? 'namespaces' : 'processes');
  const argv = [TSX, CLI_MAIN, 'worker', kind, ...(stationId !== undefined ? ['--id', stationId] : []), ...workerArgs];
  const env = hostEnvironment(kind, paths, options.env ?? process.env);
  // The worker would refuse it on start; say so here, before anything is created.
  refuseLocalStore(loadConfig(env));
  mkdirSync(join(paths.dir, 'work'), { recursive: true });
  let record: HostRecord;
  let pid: number;
  if (isolation === 'namespaces') {
    await ensureNetwork(stateDir);
    const host = await addHost(stateDir, name);
    mkdirSync(paths.stageDir, { recursive: true });
    // `ip netns exec` execs unshare, which execs sh, which execs the worker: one PID, one process group.
    const started = startProcess('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', HIDE_OTHER_HOSTS, 'vla-host', paths.dir, paths.stageDir, paths.hostsDir, name, ...argv], {
      logFile: paths.logFile,
      detached: true,
      cwd: REPO_ROOT,
      env,
      netns: host.netns,
    });
    pid = started.pid;
    record = { name, kind, ...(stationId !== undefined && { stationId }), isolation, netns: host.netns, address: host.address, argv };
  } else {
    pid = startProcess(argv[0]!, argv.slice(1), { logFile: paths.logFile, detached: true, cwd: REPO_ROOT, env }).pid;
    record = { name, kind, ...(stationId !== undefined && { stationId }), isolation, argv };
  }
  // Recorded as the worker's own command line, which is what /proc shows once the wrappers have exec'd.
  writePidFile(paths.pidFile, pid, { argv, groupLeader: true });
  writeFileSync(paths.recordFile, `${JSON.stringify(record, null, 2)}\n`);
  return record;
}

/** The SDK's log record once a worker polls (its default logger writes it to the host's log, on one line or several). */
const WORKER_RUNNING = /Worker state changed \{[^}]*state: 'RUNNING'/;

/**
 * Waits until the host's worker runs: its log says the SDK worker is RUNNING. The host's network
 * is private, so this process cannot ask the server about its pollers; the log is the signal.
 * @throws Error with the end of the host's log when the worker exits first, or after `timeoutMs`
 */
export async function waitForHostReady(stateDir: string, name: string, timeoutMs = 120_000): Promise<void> {
  const paths = hostPaths(stateDir, name);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = existsSync(paths.logFile) ? readFileSync(paths.logFile, 'utf8') : '';
    if (WORKER_RUNNING.test(log)) return;
    const state = inspectPidFile(paths.pidFile);
    if (state.kind !== 'ours') throw new Error(`host ${name}: its worker exited during start-up; last lines of ${paths.logFile}:\n${tailFile(paths.logFile, 20)}`);
    if (Date.now() > deadline) throw new Error(`host ${name}: its worker does not run after ${timeoutMs} ms; last lines of ${paths.logFile}:\n${tailFile(paths.logFile, 20)}`);
    await sleep(250);
  }
}

/** Graceful: SIGTERM to the host's process group (the worker finishes its tasks), SIGKILL after the grace period. */
export function stopHost(stateDir: string, name: string, waits: StopWaits = {}): Promise<StopOutcome> {
  return stopByPidFile(hostPaths(stateDir, name).pidFile, waits);
}

/** SIGKILL to the host's whole process group at once, as a machine that loses power. */
export function killHost(stateDir: string, name: string): StopOutcome {
  const { pidFile } = hostPaths(stateDir, name);
  const state = inspectPidFile(pidFile);
  if (state.kind !== 'ours') return state.kind === 'stale' ? { kind: 'stale', pid: state.record.pid, reason: state.reason } : state;
  const { pid } = state.record;
  // A group leader that is ours (checked just above): its whole group goes.
  if (processIdentity(pid)?.pgrp === pid) process.kill(-pid, 'SIGKILL');
  else process.kill(pid, 'SIGKILL');
  return { kind: 'stopped', pid };
}

export interface HostStatus {
  record: HostRecord;
  state: PidFileState['kind'];
  pid?: number;
  dir: string;
  logFile: string;
}

/** Every host recorded under `<state>/cluster/hosts/`, with whether its worker runs. */
export function listHosts(stateDir: string): HostStatus[] {
  const { hostsDir } = hostPaths(stateDir, 'x');
  if (!existsSync(hostsDir)) return [];
  return readdirSync(hostsDir)
    .filter((file) => file.endsWith('.json'))
    .flatMap((file) => {
      const record = readRecord(join(hostsDir, file));
      if (!record) return [];
      const paths = hostPaths(stateDir, record.name);
      const state = inspectPidFile(paths.pidFile);
      const pid = state.kind === 'ours' || state.kind === 'stale' ? state.record.pid : state.kind === 'unverifiable' ? state.pid : undefined;
      return [{ record, state: state.kind, ...(pid !== undefined && { pid }), dir: paths.dir, logFile: paths.logFile }];
    })
    .sort((a, b) => a.record.name.localeCompare(b.record.name));
}

/**
 * Runs a command from inside a host's network namespace (a researcher's CLI, a test driver), with
 * the given environment (the caller's by default) and VLA_MULTI_HOST=1. The host needs only its
 * namespace, not a running worker: `addHost` makes a client-only host. Without namespaces the
 * command runs here on loopback.
 */
export function spawnInHost(stateDir: string, name: string, command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; stdio?: 'inherit' | 'pipe' } = {}): ChildProcess {
  HostName.parse(name);
  const network = canUseNamespaces() ? readNetwork(stateDir) : undefined;
  const netns = network?.hosts[name]?.netns;
  if (network && netns === undefined) throw new Error(`no host ${name} in the cluster network (${Object.keys(network.hosts).join(', ') || 'none'}); start it first`);
  const [file, argv] = netns === undefined ? [command, [...args]] : ['ip', ['netns', 'exec', netns, command, ...args]];
  return spawn(file, argv, { stdio: options.stdio ?? 'inherit', env: { ...(options.env ?? process.env), VLA_MULTI_HOST: '1' } });
}
