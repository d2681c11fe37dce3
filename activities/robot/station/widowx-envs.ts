/**
 * The WidowX labs' arm: widowx_envs' robot server (rail-berkeley/bridge_data_robot,
 * `widowx_env_service.py --server`), an agentlace action server speaking lz4-framed pickles over
 * ZeroMQ (docs/station-protocol.md, "widowx_envs robot server"). Pickles and ZeroMQ live in a
 * Python child, `python -m vla_py.widowx`, which this driver talks to in JSON lines
 * (WidowXDriverRequest / WidowXDriverAnswer in data-schemas/python-border.ts), one request at a time.
 *
 * widowx_envs has no step counter, no stop and no idempotent act: the step count is this driver's
 * (actions executed since its last reset), chunks are sent one blocking step at a time, and an abort
 * or safeStop ends the chunk after the step in progress, the arm holding its last target.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { z } from 'zod';
import type { ActionChunk } from '../../../data-schemas/d-lan';
import { describeZodIssues } from '../../../data-schemas/issues';
import { WidowXDriverAnswer, type WidowXDriverRequest } from '../../../data-schemas/python-border';
import { WidowXEnvsStationConfig, type SafetyLimits } from '../../../data-schemas/station';
import type { PythonEnv } from '../../runtime/python-env';
import { stopProcess } from '../../runtime/processes';
import { StationError, type StationErrorCode } from './errors';
import { assertChunkSafe } from './safety';
import type { ExecuteOptions, ExecuteResult, Observation, ResetTask, StationDriver } from './types';

export type WidowXEnvsOptions = Omit<z.input<typeof WidowXEnvsStationConfig>, 'kind'> & {
  /** The project's Python environment; the child is started on first use. */
  python: () => Promise<PythonEnv>;
};

/** The child's own time limits come first; this margin only catches a child that stopped answering. */
const CHILD_MARGIN_MS = 5_000;
const STDERR_LINES_KEPT = 20;
const JPEG_MAGIC = [0xff, 0xd8, 0xff];
/** The error codes the child answers with (python/vla_py/widowx); anything else reads as server_error. */
const DRIVER_CODES = new Set<StationErrorCode>(['bad_request', 'not_ready', 'unreachable', 'timeout', 'server_error', 'protocol_error']);

/** A request as the driver writes it; the id is added when it is sent. */
type DriverRequestBody = WidowXDriverRequest extends infer R ? (R extends { id: string } ? Omit<R, 'id'> : never) : never;

interface Child {
  process: ChildProcessWithoutNullStreams;
  pid: number;
  pending: Map<string, { resolve: (a: WidowXDriverAnswer) => void; reject: (e: StationError) => void }>;
  stderr: string[];
  exited: Promise<void>;
}

export class WidowXEnvsStation implements StationDriver {
  readonly kind = 'widowx-envs' as const;
  readonly limits: SafetyLimits;
  private readonly config: WidowXEnvsStationConfig;
  private readonly python: () => Promise<PythonEnv>;
  private readonly label: string;
  private child: Child | undefined;
  private starting: Promise<Child> | undefined;
  /** The child has done the handshake and `init`; dropped when the child or the server lost it. */
  private connected = false;
  /** Actions executed since the last reset; undefined before the first reset. */
  private step: number | undefined;
  private last: Observation | undefined;
  private running: Promise<unknown> | undefined;
  private stopRequested = false;
  private closed = false;
  /** One request at a time, like the REQ socket beneath. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: WidowXEnvsOptions) {
    const { python, ...rest } = options;
    this.config = WidowXEnvsStationConfig.parse({ kind: 'widowx-envs', ...rest });
    this.limits = this.config.safety;
    this.python = python;
    this.label = `widowx_envs robot server tcp://${this.config.host}:${this.config.port}`;
  }

  async reset(_task: ResetTask): Promise<Observation> {
    // widowx_envs' reset takes no task: the operator lays out the scene the episode names.
    this.last = undefined;
    this.step = undefined;
    await this.ensureConnected();
    const o = this.toObservation(await this.observationOf({ op: 'reset' }, 'reset'), 0);
    this.step = 0;
    return this.remember(o);
  }

  async observe(): Promise<Observation> {
    const step = this.requireReset('observe');
    return this.remember(this.toObservation(await this.observationOf({ op: 'observe' }, 'observe'), step));
  }

  async execute(chunk: ActionChunk, signal?: AbortSignal, options: ExecuteOptions = {}): Promise<ExecuteResult> {
    if (this.running) throw new StationError('busy', `${this.label}: another chunk is being executed`, { retryable: true });
    this.stopRequested = false;
    const run = this.checkedChunk(chunk, signal, options);
    this.running = run;
    try {
      return await run;
    } finally {
      this.running = undefined;
    }
  }

  async safeStop(_reason: string): Promise<void> {
    // widowx_envs has no stop: the chunk ends after the blocking step in progress, which holds its target.
    this.stopRequested = true;
    this.last = undefined;
    await this.running?.catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopRequested = true;
    this.last = undefined;
    await this.running?.catch(() => undefined);
    await this.stopChild();
  }

  /** The running child's PID (tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private async checkedChunk(chunk: ActionChunk, signal: AbortSignal | undefined, options: ExecuteOptions): Promise<ExecuteResult> {
    const step = this.requireReset('execute');
    if (options.expectedStep !== undefined && options.expectedStep !== step) {
      throw new StationError('stale_observation', `the chunk was planned at step ${options.expectedStep} but the arm is at step ${step}; observe again`);
    }
    const origin = this.last ?? (await this.observe());
    assertChunkSafe(chunk, origin.state, this.limits);
    const trace: Observation[] = [];
    let observation = origin;
    this.last = undefined;
    for (const [dx, dy, dz, gripper] of chunk) {
      if (signal?.aborted || this.stopRequested || this.closed) break;
      let wire;
      try {
        // Bridge's chunk action holds the orientation: widowx_envs' rotation deltas are zero.
        wire = await this.observationOf({ op: 'step', action: [dx, dy, dz, 0, 0, 0, gripper] }, 'step_action');
      } catch (err) {
        throw this.afterFailedStep(err, trace.length, chunk.length);
      }
      this.step = (this.step ?? 0) + 1;
      observation = this.toObservation(wire, this.step);
      trace.push(observation);
    }
    this.remember(observation);
    return { executed: trace.length, observation, stopped: trace.length < chunk.length, trace };
  }

  /** A step whose answer was lost may have moved the arm: the count is no longer known, so the next chunk needs a reset. */
  private afterFailedStep(err: unknown, executed: number, total: number): StationError {
    const e = err instanceof StationError ? err : new StationError('server_error', String(err));
    const refused = e.code === 'not_ready' || e.code === 'bad_request';
    if (!refused) this.step = undefined;
    return new StationError(e.code, `step_action ${executed + 1} of ${total}: ${e.message}`, {
      endpoint: 'step_action',
      mayHaveMoved: !refused || executed > 0,
      retryable: false,
      cause: e,
    });
  }

  private requireReset(what: string): number {
    if (this.closed) throw new StationError('closed', `${what}: the station driver is closed`);
    if (this.step === undefined) throw new StationError('not_ready', `${what}: ${this.label} has not been reset since the driver started or lost track of the arm; reset it first`, { retryable: true });
    return this.step;
  }

  private remember(o: Observation): Observation {
    this.last = o;
    return o;
  }

  private toObservation(wire: { imageJpegB64: string; state: number[] }, step: number): Observation {
    const image = new Uint8Array(Buffer.from(wire.imageJpegB64, 'base64'));
    if (!JPEG_MAGIC.every((b, i) => image[i] === b)) throw new StationError('protocol_error', `${this.label}: the driver's frame is not a JPEG`);
    return { image, mimeType: 'image/jpeg', state: [...wire.state], step, timestamp: new Date().toISOString() };
  }

  private async ensureConnected(): Promise<void> {
    if (this.connected && this.child) return;
    const { host, port, requestTimeoutMs, initTimeoutMs, imageSize, cameraKey, envParams } = this.config;
    await this.request({ op: 'connect', host, port, timeoutMs: requestTimeoutMs, initTimeoutMs, imageSize, cameraKey, envParams }, 'connect', requestTimeoutMs + initTimeoutMs);
    this.connected = true;
  }

  private async observationOf(body: DriverRequestBody, what: string): Promise<{ imageJpegB64: string; state: number[] }> {
    // A reset, an observation and a blocking step each cost at most two requests of the child.
    const answer = await this.request(body, what, 2 * this.config.requestTimeoutMs);
    if (!('observation' in answer)) throw new StationError('protocol_error', `${this.label}: ${what} was answered without an observation`);
    return answer.observation;
  }

  private request(body: DriverRequestBody, what: string, timeoutMs: number): Promise<WidowXDriverAnswer> {
    const next = this.queue.then(() => this.send(body, what, timeoutMs));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async send(body: DriverRequestBody, what: string, timeoutMs: number): Promise<WidowXDriverAnswer> {
    if (this.closed) throw new StationError('closed', `${what}: the station driver is closed`);
    const child = await this.ensureChild();
    const id = randomUUID();
    const answer = await new Promise<WidowXDriverAnswer>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.pending.delete(id);
        // The child stopped answering (its own limits passed long ago): it is replaced on the next call.
        void this.stopChild();
        reject(new StationError('timeout', `${this.label}: ${what}: the driver process gave no answer within ${timeoutMs + CHILD_MARGIN_MS} ms`, { retryable: body.op !== 'step' }));
      }, timeoutMs + CHILD_MARGIN_MS);
      child.pending.set(id, {
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.process.stdin.write(`${JSON.stringify({ id, ...body } satisfies WidowXDriverRequest)}\n`);
    });
    if ('error' in answer) {
      const code = DRIVER_CODES.has(answer.error.code as StationErrorCode) ? (answer.error.code as StationErrorCode) : 'server_error';
      // The server lost its init (restarted) or was never reached: the next reset connects again.
      if (code === 'not_ready' || code === 'unreachable') this.connected = false;
      throw new StationError(code, `${this.label}: ${what}: ${answer.error.message}`, {
        endpoint: what,
        serverCode: answer.error.code,
        retryable: code === 'unreachable' || code === 'not_ready' || (code === 'timeout' && body.op !== 'step'),
      });
    }
    return answer;
  }

  private ensureChild(): Promise<Child> {
    if (this.child) return Promise.resolve(this.child);
    this.starting ??= this.startChild().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async startChild(): Promise<Child> {
    let env: PythonEnv;
    try {
      env = await this.python();
    } catch (err) {
      throw new StationError('server_error', `${this.label}: no Python environment for its driver process (python -m vla_py.widowx): ${(err as Error).message}`, { cause: err });
    }
    this.connected = false;
    const proc = spawn(env.python, ['-m', 'vla_py.widowx'], {
      // Its own process group, stopped by close(); it also watches this process (VLA_PARENT_PID).
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...env.env, PYTHONUNBUFFERED: '1', VLA_PARENT_PID: String(process.pid) },
    });
    const child: Child = { process: proc, pid: proc.pid ?? -1, pending: new Map(), stderr: [], exited: Promise.resolve() };
    createInterface({ input: proc.stderr }).on('line', (line) => {
      child.stderr.push(line);
      if (child.stderr.length > STDERR_LINES_KEPT) child.stderr.shift();
    });
    proc.stdin.on('error', () => undefined);
    createInterface({ input: proc.stdout }).on('line', (line) => {
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        child.stderr.push(`(stdout) ${line.slice(0, 500)}`);
        return;
      }
      const parsed = WidowXDriverAnswer.safeParse(json);
      const id = parsed.success ? parsed.data.id : typeof (json as { id?: unknown }).id === 'string' ? (json as { id: string }).id : null;
      const waiter = id === null ? undefined : child.pending.get(id);
      if (!waiter || id === null) {
        child.stderr.push(`(stdout, not understood) ${line.slice(0, 500)}`);
        return;
      }
      child.pending.delete(id);
      if (parsed.success) waiter.resolve(parsed.data);
      else waiter.reject(new StationError('protocol_error', `${this.label}: the driver's answer does not follow its protocol: ${describeZodIssues(parsed.error, { root: '(answer)' })}`));
    });
    child.exited = new Promise<void>((resolve) => {
      const fail = (how: string): void => {
        if (this.child === child) {
          this.child = undefined;
          this.connected = false;
        }
        const tail = child.stderr.length > 0 ? `; last stderr lines:\n${child.stderr.join('\n')}` : '';
        const err = new StationError('unreachable', `${this.label}: the driver process (python -m vla_py.widowx) ${how}${tail}`, { retryable: true });
        for (const p of child.pending.values()) p.reject(err);
        child.pending.clear();
        resolve();
      };
      proc.once('error', (err) => fail(`could not start: ${err.message}`));
      proc.once('close', (code, sig) => fail(sig ? `was killed by ${sig}` : `exited with code ${code}`));
    });
    if (proc.pid === undefined) {
      await child.exited;
      throw new StationError('unreachable', `${this.label}: could not start ${env.python} -m vla_py.widowx${child.stderr.length > 0 ? `: ${child.stderr.join('\n')}` : ''}`, { retryable: true });
    }
    this.child = child;
    return child;
  }

  private async stopChild(): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    this.connected = false;
    child.process.stdin.end();
    const stopped = await stopProcess(child.pid, { group: true, graceMs: 2_000 }).then(
      () => true,
      () => false,
    );
    if (stopped) await child.exited;
  }
}
