import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { inspectPidFile, isAlive, startProcess, stopByPidFile, tailFile, type StopOutcome, type StopWaits } from '../../activities/runtime/processes';

const run = promisify(execFile);

/**
 * The cluster profile's PostgreSQL: Debian's package (binaries under /usr/lib/postgresql/<ver>/bin),
 * but never its system cluster nor `pg_ctlcluster`. The project initialises its own data directory,
 * listens on one address on a port of its own, keeps its unix socket in the data directory, and
 * runs `postgres` in the foreground as a process with a PID file (activities/runtime/processes.ts).
 *
 * PostgreSQL refuses to run as root. As root we run it as the `postgres` account, which Debian's
 * package creates (created here with `useradd --system` when missing); as anyone else, as that user.
 */

/** The superuser `initdb` creates; Temporal and temporal-sql-tool log in as it, with a generated password. */
export const POSTGRES_USER = 'temporal';

/** The account the server runs as when we are root. */
export const POSTGRES_ACCOUNT = 'postgres';

/** Temporal's `postgres12` plugin needs PostgreSQL 12 or later. */
const MIN_POSTGRES_MAJOR = 12;

/** Where Debian installs each major version's binaries. */
const DEBIAN_POSTGRES_ROOT = '/usr/lib/postgresql';

/** The newest `/usr/lib/postgresql/<ver>/bin` holding `initdb` and `postgres`, if any. */
export function findPostgresBinDir(root = DEBIAN_POSTGRES_ROOT): string | undefined {
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => /^\d+$/.test(name) && Number(name) >= MIN_POSTGRES_MAJOR)
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(root, version, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'postgres'))) return bin;
  }
  return undefined;
}

const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * PostgreSQL's binaries; when missing and we are root on a Debian-like machine, installs Debian's
 * `postgresql` package first, saying so (only the cluster profile calls this).
 */
export async function ensurePostgres(log: (line: string) => void): Promise<string> {
  const found = findPostgresBinDir();
  if (found) return found;
  if (!isRoot()) throw new Error(`PostgreSQL ${MIN_POSTGRES_MAJOR}+ is not installed under ${DEBIAN_POSTGRES_ROOT}; install it (Debian: sudo apt-get install -y postgresql) and run again`);
  log('PostgreSQL is not installed; installing it with: apt-get install -y postgresql (the cluster profile uses its binaries, not its system cluster)');
  try {
    await run('apt-get', ['install', '-y', 'postgresql'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? String(err);
    throw new Error(`apt-get install -y postgresql failed:\n${stderr.split('\n').slice(-10).join('\n')}`);
  }
  const installed = findPostgresBinDir();
  if (!installed) throw new Error(`apt-get installed postgresql, but no ${DEBIAN_POSTGRES_ROOT}/<version>/bin with initdb and postgres appeared`);
  return installed;
}

/** The account `postgres` runs as: none (ourselves) unless we are root. */
export interface PostgresAccount {
  name: string;
  uid: number;
  gid: number;
}

async function lookupAccount(name: string): Promise<PostgresAccount | undefined> {
  try {
    const uid = Number((await run('id', ['-u', name])).stdout.trim());
    const gid = Number((await run('id', ['-g', name])).stdout.trim());
    return { name, uid, gid };
  } catch {
    return undefined;
  }
}

export async function postgresAccount(log: (line: string) => void): Promise<PostgresAccount | undefined> {
  if (!isRoot()) return undefined;
  const existing = await lookupAccount(POSTGRES_ACCOUNT);
  if (existing) return existing;
  log(`PostgreSQL refuses to run as root; creating the system account ${POSTGRES_ACCOUNT} with useradd`);
  await run('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', POSTGRES_ACCOUNT]);
  const created = await lookupAccount(POSTGRES_ACCOUNT);
  if (!created) throw new Error(`useradd ${POSTGRES_ACCOUNT} succeeded but id -u ${POSTGRES_ACCOUNT} does not find it`);
  return created;
}

/** Runs a command as `account` (or ourselves), returning its output; errors carry the last lines of stderr. */
async function runAs(account: PostgresAccount | undefined, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const [file, argv] = account === undefined ? [command, args] : ['setpriv', [`--reuid=${account.uid}`, `--regid=${account.gid}`, '--init-groups', '--', command, ...args]];
  try {
    return (await run(file, argv, { env, maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (err) {
    const stderr = ((err as { stderr?: string }).stderr ?? '').trim();
    throw new Error(`${command} ${args[0] ?? ''} failed: ${stderr.split('\n').slice(-5).join(' / ') || (err as Error).message}`);
  }
}

/** The generated password, created once (0600); never printed. */
export function ensurePassword(file: string): string {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  }
  return readFileSync(file, 'utf8').trim();
}

/**
 * Initialises the data directory once (`initdb`, superuser POSTGRES_USER with the password from
 * `passwordFile`, password logins only); a directory that already holds a cluster is kept.
 */
export async function initPostgres(options: {
  binDir: string;
  dataDir: string;
  passwordFile: string;
  account: PostgresAccount | undefined;
  /** The address the server listens on; Temporal, on the same host, connects from it. */
  bindIp: string;
  log: (line: string) => void;
}): Promise<void> {
  const { binDir, dataDir, account } = options;
  if (existsSync(join(dataDir, 'PG_VERSION'))) return;
  const password = ensurePassword(options.passwordFile);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (account) {
    chownSync(dataDir, account.uid, account.gid);
    // Every folder above the data directory must let the account through, or initdb fails obscurely.
    try {
      await runAs(account, 'test', ['-w', dataDir]);
    } catch {
      throw new Error(`PostgreSQL runs as the account ${account.name}, which cannot reach ${dataDir}: a folder above it is closed to other users; choose a VLA_STATE_DIR that other users may traverse (e.g. under /srv or /tmp)`);
    }
  }
  // initdb reads the password from a file; this one lives only while initdb runs.
  const pwFile = join(dirname(dataDir), '.initdb-password');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (account) chownSync(pwFile, account.uid, account.gid);
  options.log(`initialising PostgreSQL data directory ${dataDir}${account ? ` (owned by ${account.name})` : ''}`);
  try {
    await runAs(account, join(binDir, 'initdb'), ['-D', dataDir, '-U', POSTGRES_USER, `--pwfile=${pwFile}`, '--auth-local=scram-sha-256', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C']);
  } finally {
    rmSync(pwFile, { force: true });
  }
  // initdb lets in loopback clients only; a server on another address is dialled from that address.
  if (!['127.0.0.1', '::1'].includes(options.bindIp)) {
    appendFileSync(join(dataDir, 'pg_hba.conf'), `host all all ${options.bindIp}/${options.bindIp.includes(':') ? 128 : 32} scram-sha-256\n`);
  }
}

export interface PostgresServerOptions {
  binDir: string;
  dataDir: string;
  logFile: string;
  pidFile: string;
  /** The only address it listens on. */
  bindIp: string;
  port: number;
  account: PostgresAccount | undefined;
  /** Run inside this network namespace. @default none */
  netns?: string;
  /** @default 60000 */
  readyTimeoutMs?: number;
}

/** Starts `postgres` (detached, its own process group) and waits until it accepts connections. */
export async function startPostgres(options: PostgresServerOptions): Promise<number> {
  const args = [
    '-D', options.dataDir,
    '-c', `listen_addresses=${options.bindIp}`,
    '-p', String(options.port),
    // The socket stays in the data directory, never in a shared folder like /var/run/postgresql.
    '-c', `unix_socket_directories=${options.dataDir}`,
  ];
  const proc = startProcess(join(options.binDir, 'postgres'), args, {
    logFile: options.logFile,
    pidFile: options.pidFile,
    detached: true,
    netns: options.netns,
    ...(options.account && { user: { uid: options.account.uid, gid: options.account.gid } }),
  });
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (!isAlive(proc.pid)) throw new Error(`PostgreSQL (pid ${proc.pid}) exited during start-up; last lines of ${options.logFile}:\n${tailFile(options.logFile, 20)}`);
    if (await postgresAccepts(options.binDir, options.bindIp, options.port, options.netns)) return proc.pid;
    if (Date.now() > deadline) {
      await stopPostgres(options.pidFile);
      throw new Error(`PostgreSQL on ${options.bindIp}:${options.port} not ready; last lines of ${options.logFile}:\n${tailFile(options.logFile, 20)}`);
    }
    await sleep(250);
  }
}

/** `pg_isready`: whether the server accepts connections (no login needed). */
export async function postgresAccepts(binDir: string, host: string, port: number, netns?: string): Promise<boolean> {
  const args = ['-q', '-h', host, '-p', String(port), '-t', '2'];
  try {
    if (netns === undefined) await run(join(binDir, 'pg_isready'), args);
    else await run('ip', ['netns', 'exec', netns, join(binDir, 'pg_isready'), ...args]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops the server by its PID file: SIGINT first (PostgreSQL's fast shutdown, which closes client
 * sessions; its SIGTERM would wait for every client, and Temporal never lets go), then the usual
 * bounded SIGTERM/SIGKILL to its process group.
 */
export async function stopPostgres(pidFile: string, waits: StopWaits = { graceMs: 30_000, killWaitMs: 5_000 }): Promise<StopOutcome> {
  const state = inspectPidFile(pidFile);
  if (state.kind === 'ours') {
    try {
      process.kill(state.record.pid, 'SIGINT');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
    const { pid } = state.record;
    const deadline = Date.now() + (waits.graceMs ?? 30_000);
    while (isAlive(pid) && Date.now() < deadline) await sleep(100);
    if (!isAlive(pid)) {
      rmSync(pidFile, { force: true });
      return { kind: 'stopped', pid };
    }
  }
  return stopByPidFile(pidFile, waits);
}
