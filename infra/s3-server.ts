import { BucketAlreadyOwnedByYou, CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import getPort from 'get-port';
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { silenceNodeVersionWarning } from '../activities/store/s3-store';
import { loadConfig } from './config';
import { isAlive, startProcess, stopProcess, tailFile } from '../activities/runtime/processes';
import { ensureGoTool } from './tools';

const run = promisify(execFile);

/**
 * versitygw is the project's S3-compatible server for tests and the demo: it honours
 * `If-None-Match: *` on PutObject and CompleteMultipartUpload, which the exactly-once writes
 * depend on, and it stores objects as plain files. v1.8.0 or later: up to v1.7.0 the posix
 * backend checked the condition before staging the body and published without a lock, so
 * concurrent creates of one key could all succeed (versity/versitygw#2288; the store contract's
 * race tests caught it).
 */
export const VERSITYGW_VERSION = 'v1.8.0';

/** Loopback-only development credentials; never reused outside this server. */
export const DEV_S3_ACCESS_KEY_ID = 'vla-dev-access';
export const DEV_S3_SECRET_ACCESS_KEY = 'vla-dev-secret-loopback-only';

/** The versitygw binary: `VERSITYGW_PATH`, else on PATH, else built once into the cache. */
export function ensureVersitygw(options: { cacheDir?: string; log?: (line: string) => void } = {}): Promise<string> {
  return ensureGoTool(
    { binary: 'versitygw', envVar: 'VERSITYGW_PATH', module: 'github.com/versity/versitygw/cmd/versitygw', version: VERSITYGW_VERSION },
    options.cacheDir ?? loadConfig().cacheDir,
    options.log ?? ((line) => console.error(line)),
  );
}

export interface S3ServerOptions {
  /** Root folder; each subfolder is a bucket. Created when missing. */
  dataDir: string;
  /** @default a free port on `bindIp` */
  port?: number;
  /** The address the server listens on, and clients dial. @default '127.0.0.1' */
  bindIp?: string;
  /**
   * Run inside this network namespace (the cluster LAN, infra/cluster/network.ts), listening on
   * `bindIp` there (a port must then be given); the readiness check runs inside it too. @default none
   */
  netns?: string;
  /** @default DEV_S3_ACCESS_KEY_ID */
  accessKeyId?: string;
  /** @default DEV_S3_SECRET_ACCESS_KEY */
  secretAccessKey?: string;
  /** @default 'us-east-1' */
  region?: string;
  /** stdout and stderr of the server. @default `<dataDir>/../versitygw.log` */
  logFile?: string;
  /** Written with the server's PID so `vla dev down` can stop it later. @default none */
  pidFile?: string;
  /** Leave the server running after this process exits (`vla dev up`). @default false */
  detached?: boolean;
  /** @default 30000 */
  readyTimeoutMs?: number;
  /** @default the result of `ensureVersitygw()` */
  binary?: string;
}

export interface S3Server {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  pid: number;
  logFile: string;
  /** SIGTERM to the server's PID, SIGKILL after a grace period. */
  stop(): Promise<void>;
}

/** Starts versitygw (on 127.0.0.1 unless told otherwise) with a posix backend and waits until it answers HTTP. */
export async function startS3Server(options: S3ServerOptions): Promise<S3Server> {
  const binary = options.binary ?? (await ensureVersitygw());
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const logFile = options.logFile ?? join(dirname(dataDir), 'versitygw.log');
  const accessKeyId = options.accessKeyId ?? DEV_S3_ACCESS_KEY_ID;
  const secretAccessKey = options.secretAccessKey ?? DEV_S3_SECRET_ACCESS_KEY;
  const region = options.region ?? 'us-east-1';
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  const bindIp = options.bindIp ?? '127.0.0.1';
  const host = bindIp.includes(':') ? `[${bindIp}]` : bindIp;

  if (options.netns !== undefined && options.port === undefined) throw new Error('startS3Server: a server in a network namespace needs an explicit port');
  // A port picked by get-port can be taken before the server binds it; pick again then.
  const attempts = options.port === undefined ? 3 : 1;
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = options.port ?? (await getPort({ host: bindIp }));
    const endpoint = `http://${host}:${port}`;
    const proc = startProcess(
      binary,
      // --keep-alive: without it every request pays a new TCP connection; --quiet: no per-request log lines.
      ['--port', `${host}:${port}`, '--region', region, '--keep-alive', '--quiet', 'posix', dataDir],
      {
        logFile,
        pidFile: options.pidFile,
        detached: options.detached,
        netns: options.netns,
        // Credentials go through the environment rather than argv, which any local user can read in `ps`.
        env: { ...process.env, ROOT_ACCESS_KEY_ID: accessKeyId, ROOT_SECRET_ACCESS_KEY: secretAccessKey },
      },
    );
    const stop = (): Promise<void> => stopProcess(proc.pid, { graceMs: 5_000, group: options.detached ?? false });
    try {
      await waitForHttp(endpoint, proc.pid, timeoutMs, options.netns);
      return { endpoint, accessKeyId, secretAccessKey, region, pid: proc.pid, logFile, stop };
    } catch (err) {
      await stop();
      lastError = new Error(`versitygw on ${endpoint} did not start: ${(err as Error).message}\nlast lines of ${logFile}:\n${tailFile(logFile, 20)}`);
    }
  }
  throw lastError ?? new Error('versitygw did not start');
}

/**
 * Any HTTP answer (an anonymous request gets 403) means the server is up. In a network namespace
 * this process cannot dial, a `node` run inside it asks.
 */
async function waitForHttp(endpoint: string, pid: number, timeoutMs: number, netns?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) throw new Error(`the process (pid ${pid}) exited during start-up`);
    try {
      if (netns !== undefined) {
        const probe = `fetch(${JSON.stringify(endpoint)}, { signal: AbortSignal.timeout(2000) }).then(() => process.exit(0), (e) => { console.error(e.cause?.message ?? e.message); process.exit(1); })`;
        await run('ip', ['netns', 'exec', netns, process.execPath, '-e', probe], { timeout: 10_000 });
        return;
      }
      const res = await fetch(endpoint, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      return;
    } catch (err) {
      lastError = err;
      await sleep(100);
    }
  }
  const reason = lastError instanceof Error ? (lastError.cause instanceof Error ? lastError.cause.message : lastError.message) : 'no answer';
  throw new Error(`no HTTP answer after ${timeoutMs} ms (${reason})`);
}

/** Creates `name` on the server; an existing bucket of ours is fine. Bucket names need 3-63 characters. */
export async function createBucket(server: Pick<S3Server, 'endpoint' | 'accessKeyId' | 'secretAccessKey' | 'region'>, name: string): Promise<void> {
  silenceNodeVersionWarning();
  const client = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } catch (err) {
    if (!(err instanceof BucketAlreadyOwnedByYou)) throw err;
  } finally {
    client.destroy();
  }
}
