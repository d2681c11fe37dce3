import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { InferenceAnswerLine, InferenceErrorLine, InferenceNotReadyLine, InferenceReadyLine, type InferenceRequestLine } from '../../../data-schemas/python-border';
import type { VqaRequest } from '../../../data-schemas/vqa';
import type { PythonEnv } from '../../runtime/python-env';
import { stopProcess } from '../../runtime/processes';
import { BackendError, BackendErrorCode } from './errors';
import type { InferencePool, ResidentModel } from './pool';
import type { InferenceBackend } from './types';

/**
 * transformers + peft in the project's Python environment: `python -m vla_py.infer` as a child process
 * in its own process group, spawned on first use and stopped by close(). Requests are written as JSON
 * lines as they come and answered by id; the child batches whatever is pending (python/vla_py/infer).
 */
export interface LocalBackendOptions {
  baseModel: string;
  adapter?: string;
  python: () => Promise<PythonEnv>;
  /** Most requests per generate call. @default 8 */
  maxBatchSize?: number;
  /** How long the child waits for more requests after the first of a batch. @default 5 */
  batchWindowMs?: number;
  /** cuda, cuda:1, cpu. @default cuda when available */
  device?: string;
  /** Loading the model; a child not ready by then is stopped. @default 600_000 */
  loadTimeoutMs?: number;
  /** The worker's bound on loaded models: the child is started through it, released when idle or evicted. */
  pool?: InferencePool;
}

/** One answered request, as the server writes it (InferenceAnswerLine). */
export type LocalAnswer = InferenceAnswerLine;

export interface LocalBackend extends InferenceBackend {
  /** generate() with the raw answer: batch size, and per-token log-probabilities with `logprobs`. */
  generateRaw(request: VqaRequest, options?: { signal?: AbortSignal; logprobs?: boolean }): Promise<LocalAnswer>;
  /** What the ready line said; undefined before the child is ready. */
  readonly info: InferenceReadyLine | undefined;
  /** The child's PID while it runs. */
  readonly pid: number | undefined;
}


const STDERR_LINES_KEPT = 30;

function codeOf(raw: string): BackendErrorCode {
  return (BackendErrorCode as readonly string[]).includes(raw) ? (raw as BackendErrorCode) : 'server';
}

/** `file://` URIs become paths; other URI schemes must be staged to a local directory first. */
function localPath(what: string, value: string): string {
  if (value.startsWith('file://')) return fileURLToPath(value);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new BackendError('bad_request', `local backend: ${what} ${value} is an object URI; download it to a directory on this worker first`);
  }
  return value;
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error(`request aborted${typeof reason === 'string' ? `: ${reason}` : ''}`);
}

interface Pending {
  resolve: (answer: LocalAnswer) => void;
  reject: (err: Error) => void;
}

interface Child {
  process: ChildProcess;
  pid: number;
  ready: Promise<InferenceReadyLine>;
  exited: Promise<void>;
  /** Set once the process has exited. */
  state: { dead: boolean };
}

export function createLocalBackend(options: LocalBackendOptions): LocalBackend {
  const baseModel = localPath('base model', options.baseModel);
  const adapter = options.adapter !== undefined ? localPath('adapter', options.adapter) : undefined;
  const label = `local model ${baseModel}${adapter ? ` + adapter ${adapter}` : ''}`;
  const pending = new Map<string, Pending>();
  let child: Child | undefined;
  let info: InferenceReadyLine | undefined;
  let closed = false;
  const pool = options.pool;
  let starting: Promise<Child> | undefined;

  /** Stops the running child; the next request starts another. */
  async function stopChild(): Promise<void> {
    // A child still loading is stopped once it is there.
    if (starting) await starting.catch(() => undefined);
    const current = child;
    if (!current) return;
    current.process.stdin!.end();
    // stopProcess's waits are bounded; a process that outlives SIGKILL is not waited for.
    const stopped = await stopProcess(current.pid, { group: true, graceMs: 5_000 }).then(
      () => true,
      () => false,
    );
    if (stopped) await current.exited;
  }
  const resident: ResidentModel = {
    label,
    get busy() {
      return pending.size > 0 || starting !== undefined;
    },
    release: stopChild,
  };

  function failAll(err: BackendError): void {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  }

  async function start(): Promise<Child> {
    const env = await options.python();
    const args = ['-m', 'vla_py.infer', '--base-model', baseModel];
    if (adapter) args.push('--adapter', adapter);
    if (options.maxBatchSize !== undefined) args.push('--max-batch-size', String(options.maxBatchSize));
    if (options.batchWindowMs !== undefined) args.push('--batch-window-ms', String(options.batchWindowMs));
    if (options.device !== undefined) args.push('--device', options.device);
    await pool?.admit(resident);
    const proc = spawn(env.python, args, {
      // Its own process group: close() stops it and anything it started.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...env.env, PYTHONUNBUFFERED: '1', VLA_PARENT_PID: String(process.pid) },
    });
    const stderr: string[] = [];
    const lastStderr = (): string => (stderr.length > 0 ? `; last stderr lines:\n${stderr.join('\n')}` : '');
    createInterface({ input: proc.stderr }).on('line', (line) => {
      stderr.push(line);
      if (stderr.length > STDERR_LINES_KEPT) stderr.shift();
    });
    // A write to a dead child must not crash the worker; its exit rejects what is pending.
    proc.stdin.on('error', () => undefined);

    let settleReady!: { resolve: (r: InferenceReadyLine) => void; reject: (e: unknown) => void };
    const ready = new Promise<InferenceReadyLine>((resolve, reject) => {
      settleReady = { resolve, reject };
    });
    // Rejections are handled by whoever awaits ready; this keeps an unawaited one from being "unhandled".
    ready.catch(() => undefined);
    let loadError: BackendError | undefined;
    let isReady = false;
    const state = { dead: false };

    createInterface({ input: proc.stdout }).on('line', (line) => {
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        stderr.push(`(stdout) ${line}`);
        return;
      }
      if (!isReady) {
        const ok = InferenceReadyLine.safeParse(json);
        if (ok.success) {
          isReady = true;
          info = ok.data;
          settleReady.resolve(ok.data);
          return;
        }
        const notReady = InferenceNotReadyLine.safeParse(json);
        if (notReady.success) {
          loadError = new BackendError(codeOf(notReady.data.error.code), `${label}: ${notReady.data.error.message}`);
          settleReady.reject(loadError);
          return;
        }
      }
      const answer = InferenceAnswerLine.safeParse(json);
      if (answer.success) {
        const p = pending.get(answer.data.id);
        pending.delete(answer.data.id);
        p?.resolve(answer.data);
        return;
      }
      const error = InferenceErrorLine.safeParse(json);
      if (error.success && error.data.id !== null) {
        const p = pending.get(error.data.id);
        pending.delete(error.data.id);
        p?.reject(new BackendError(codeOf(error.data.error.code), `${label}: ${error.data.error.message}`));
        return;
      }
      stderr.push(`(stdout, not understood) ${line.slice(0, 500)}`);
    });

    const exited = new Promise<void>((resolve) => {
      proc.once('error', (err) => {
        const failure = new BackendError('server', `${label}: could not start ${env.python}: ${err.message}`);
        settleReady.reject(failure);
        failAll(failure);
        resolve();
      });
      proc.once('close', (code, signal) => {
        state.dead = true;
        if (child?.process === proc) {
          child = undefined;
          pool?.exited(resident);
        }
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        const failure = loadError ?? new BackendError('server', `${label}: the inference process ${how}${closed ? ' (backend closed)' : ''}${lastStderr()}`);
        settleReady.reject(failure);
        failAll(failure);
        resolve();
      });
    });
    if (proc.pid === undefined) {
      await exited;
      throw new BackendError('server', `${label}: could not start ${env.python}`);
    }
    const pid = proc.pid;
    const loadTimeout = setTimeout(() => {
      if (!isReady) {
        settleReady.reject(new BackendError('server', `${label}: not loaded after ${options.loadTimeoutMs ?? 600_000} ms${lastStderr()}`));
        void stopProcess(pid, { group: true, graceMs: 2_000 }).catch(() => undefined);
      }
    }, options.loadTimeoutMs ?? 600_000);
    loadTimeout.unref();
    void ready.then(
      () => clearTimeout(loadTimeout),
      () => clearTimeout(loadTimeout),
    );
    return { process: proc, pid, ready, exited, state };
  }

  async function running(): Promise<Child> {
    if (closed) throw new BackendError('server', `${label}: the backend is closed`);
    if (!child) {
      // Concurrent first requests share one spawn.
      starting ??= start().finally(() => {
        starting = undefined;
      });
      const started = await starting;
      if (closed) {
        await stopProcess(started.pid, { group: true, graceMs: 1_000 }).catch(() => undefined);
        throw new BackendError('server', `${label}: the backend is closed`);
      }
      // The child may already have exited (a load failure) and cleared itself; its ready promise tells.
      if (!started.state.dead) child ??= started;
      await started.ready;
      return started;
    }
    const current = child;
    await current.ready;
    return current;
  }

  /** The last request answered: the pool may release the child once it stays idle. */
  function settled(): void {
    if (pending.size === 0) pool?.idle(resident);
  }

  async function generateRaw(request: VqaRequest, callOptions: { signal?: AbortSignal; logprobs?: boolean } = {}): Promise<LocalAnswer> {
    const { signal } = callOptions;
    if (signal?.aborted) throw abortReason(signal);
    pool?.used(resident);
    const current = await running();
    const id = randomUUID();
    const g = request.generation;
    // Every field written: the Python side defaults nothing (InferenceRequestLine).
    const line = JSON.stringify({
      id,
      prompt: request.prompt,
      images: request.images.map((image) => Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength).toString('base64')),
      maxNewTokens: g.maxNewTokens,
      temperature: g.temperature,
      topP: g.topP ?? null,
      logprobs: callOptions.logprobs === true,
      actionTokens: request.actionTokens === true,
    } satisfies InferenceRequestLine);
    return new Promise<LocalAnswer>((resolve, reject) => {
      const onAbort = (): void => {
        // The child still answers; the answer is dropped.
        pending.delete(id);
        reject(abortReason(signal));
        settled();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      pending.set(id, {
        resolve: (a) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(a);
          settled();
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
          settled();
        },
      });
      current.process.stdin!.write(`${line}\n`);
    });
  }

  return {
    decodesActionTokens: true,
    get info() {
      return info;
    },
    get pid() {
      return child?.pid;
    },
    generateRaw,
    async generate(request, signal) {
      const answer = await generateRaw(request, signal ? { signal } : {});
      return { text: answer.text, usage: { inputTokens: answer.inputTokens, outputTokens: answer.outputTokens }, ...(answer.truncated && { truncated: true }) };
    },
    async check() {
      pool?.used(resident);
      await running();
      pool?.idle(resident);
    },
    async close() {
      closed = true;
      await stopChild();
      pool?.exited(resident);
    },
  };
}
