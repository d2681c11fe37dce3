/**
 * The real-arm station: a WidowX behind an HTTP action server that speaks our JSON protocol
 * (docs/station-protocol.md), modelled on the BridgeData v2 robot infrastructure's action server
 * (rail-berkeley/bridge_data_robot: reset, get observation, step actions, blocking moves).
 *
 * Safety is checked here, before any request is sent, from the state of the latest observation;
 * the server checks again. Every /act names the step of the observation its chunk was planned from,
 * so a retried request after a lost answer is refused instead of moving the arm twice.
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { ActionChunk } from '../../../data-schemas/d-lan';
import {
  SafetyLimits,
  WireActResponse,
  WireError,
  WireObservation,
  WireStopResponse,
  type SafetyLimitsInput,
  type WireActRequest,
  type WireResetRequest,
  type WireStopRequest,
} from '../../../data-schemas/station';
import { StationError, type StationErrorCode } from './errors';
import { assertChunkSafe } from './safety';
import type { ExecuteOptions, ExecuteResult, Observation, ResetTask, StationDriver } from './types';
import { describeZodIssues } from '../../../data-schemas/issues';

export interface WidowXHttpOptions {
  /** Base URL of the action server; endpoints are resolved against it. */
  url: string;
  /** Limit for /reset, /observation and /stop, milliseconds (default 30 s: a reset moves the arm). */
  requestTimeoutMs?: number;
  /** Added per action to the limit of a /act (default 2 s). */
  actionTimeoutMs?: number;
  safety?: SafetyLimitsInput;
}

const JPEG_MAGIC = [0xff, 0xd8, 0xff];

/** Server error codes the client maps onto its own; others become bad_request (4xx) or server_error. */
const SERVER_CODES: Partial<Record<string, StationErrorCode>> = {
  bad_request: 'bad_request',
  unsafe_action: 'unsafe_action',
  not_ready: 'not_ready',
  busy: 'busy',
  stale_observation: 'stale_observation',
};

interface CallOptions {
  timeoutMs: number;
  /** A /act: its outcome is unknown when the answer is lost. */
  moves?: boolean;
}

export class WidowXHttpStation implements StationDriver {
  readonly kind = 'widowx-http' as const;
  readonly limits: SafetyLimits;
  private readonly base: URL;
  private readonly requestTimeoutMs: number;
  private readonly actionTimeoutMs: number;
  /** The latest observation, the origin of the next chunk; dropped when the arm may have moved since. */
  private last: Observation | undefined;
  private closed = false;

  constructor(options: WidowXHttpOptions) {
    const base = new URL(options.url);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new RangeError(`station url must be http(s), got ${options.url}`);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    this.base = base;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.actionTimeoutMs = options.actionTimeoutMs ?? 2_000;
    this.limits = SafetyLimits.parse(options.safety ?? {});
  }

  async reset(task: ResetTask): Promise<Observation> {
    this.last = undefined;
    const body: WireResetRequest = { instruction: task.instruction, ...(task.seed === undefined ? {} : { seed: task.seed }), ...(task.scene === undefined ? {} : { scene: task.scene }) };
    // A reset may be repeated: it always ends at the neutral pose, so its failures stay retryable.
    const wire = await this.call('POST', 'reset', body, WireObservation, { timeoutMs: this.requestTimeoutMs });
    return this.remember(this.toObservation(wire, 'POST /reset'));
  }

  async observe(): Promise<Observation> {
    const wire = await this.call('GET', 'observation', undefined, WireObservation, { timeoutMs: this.requestTimeoutMs });
    return this.remember(this.toObservation(wire, 'GET /observation'));
  }

  async execute(chunk: ActionChunk, signal?: AbortSignal, options: ExecuteOptions = {}): Promise<ExecuteResult> {
    let origin = this.last;
    if (!origin || (options.expectedStep !== undefined && origin.step !== options.expectedStep)) origin = await this.observe();
    if (options.expectedStep !== undefined && origin.step !== options.expectedStep) {
      throw new StationError('stale_observation', `the chunk was planned at step ${options.expectedStep} but the arm is at step ${origin.step}; observe again`);
    }
    assertChunkSafe(chunk, origin.state, this.limits);
    if (signal?.aborted) return { executed: 0, observation: origin, stopped: true, trace: [] };
    const actId = randomUUID();
    const body: WireActRequest = { actions: chunk.map((a) => [a[0], a[1], a[2], a[3]]), blocking: true, expected_step: origin.step, act_id: actId };
    // An abort does not cut the request (the arm would keep going): it asks the server to stop, and
    // the /act answers with what was executed.
    let stopSent: Promise<void> | undefined;
    const onAbort = (): void => {
      stopSent = this.stopRequest({ reason: 'the episode aborted the chunk', act_id: actId }).catch(() => undefined);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    this.last = undefined;
    try {
      const res = await this.call('POST', 'act', body, WireActResponse, { timeoutMs: this.requestTimeoutMs + this.actionTimeoutMs * chunk.length, moves: true });
      if (res.executed > chunk.length) {
        throw new StationError('protocol_error', `POST /act reports ${res.executed} actions executed of ${chunk.length} sent`, { endpoint: 'POST /act', mayHaveMoved: true });
      }
      const observation = this.remember(this.toObservation(res.observation, 'POST /act'));
      const trace = (res.trace ?? []).map((o) => this.toObservation(o, 'POST /act'));
      if (trace.length > 0 && trace.length !== res.executed) {
        throw new StationError('protocol_error', `POST /act sent ${trace.length} trace observations for ${res.executed} executed actions`, { endpoint: 'POST /act', mayHaveMoved: true });
      }
      return { executed: res.executed, observation, stopped: res.stopped || res.executed < chunk.length, trace };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      await stopSent;
    }
  }

  async safeStop(reason: string): Promise<void> {
    this.last = undefined;
    await this.stopRequest({ reason });
  }

  close(): Promise<void> {
    this.closed = true;
    this.last = undefined;
    return Promise.resolve();
  }

  private async stopRequest(body: WireStopRequest): Promise<void> {
    await this.call('POST', 'stop', body, WireStopResponse, { timeoutMs: Math.min(this.requestTimeoutMs, 10_000) });
  }

  private remember(o: Observation): Observation {
    this.last = o;
    return o;
  }

  private toObservation(wire: WireObservation, endpoint: string): Observation {
    const image = new Uint8Array(Buffer.from(wire.image_jpeg_b64, 'base64'));
    if (!JPEG_MAGIC.every((b, i) => image[i] === b)) throw new StationError('protocol_error', `${endpoint}: image_jpeg_b64 is not a JPEG`, { endpoint });
    return { image, mimeType: 'image/jpeg', state: [...wire.state], step: wire.step, timestamp: wire.timestamp ?? new Date().toISOString() };
  }

  private async call<S extends z.ZodType>(method: 'GET' | 'POST', path: string, body: unknown, schema: S, opts: CallOptions): Promise<z.infer<S>> {
    const endpoint = `${method} /${path}`;
    if (this.closed) throw new StationError('closed', `${endpoint}: the station driver is closed`, { endpoint });
    const url = new URL(path, this.base);
    const unknownOutcome = opts.moves === true;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      throw transportError(err, endpoint, url, opts.timeoutMs, unknownOutcome);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new StationError('protocol_error', `${endpoint}: HTTP ${res.status} answer is not JSON: ${snippet(text)}`, {
        endpoint,
        status: res.status,
        mayHaveMoved: unknownOutcome,
        retryable: !unknownOutcome,
      });
    }
    if (!res.ok) {
      const parsed = WireError.safeParse(json);
      const serverCode = parsed.success ? parsed.data.error.code : undefined;
      const message = parsed.success ? parsed.data.error.message : snippet(text);
      const code: StationErrorCode = (serverCode === undefined ? undefined : SERVER_CODES[serverCode]) ?? (res.status < 500 ? 'bad_request' : 'server_error');
      // 4xx: refused before moving (protocol rule). 5xx: the outcome of a /act or /reset is unknown.
      const moved = unknownOutcome && res.status >= 500;
      throw new StationError(code, `${endpoint}: HTTP ${res.status} ${serverCode ?? 'error'}: ${message}`, {
        endpoint,
        status: res.status,
        ...(serverCode === undefined ? {} : { serverCode }),
        mayHaveMoved: moved,
        retryable: code === 'busy' || code === 'not_ready' || (res.status >= 500 && !moved),
      });
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new StationError('protocol_error', `${endpoint}: the answer does not follow the protocol: ${describeZodIssues(parsed.error, { root: '(body)' })}`, {
        endpoint,
        status: res.status,
        mayHaveMoved: unknownOutcome,
        retryable: !unknownOutcome,
      });
    }
    return parsed.data;
  }
}

function snippet(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return JSON.stringify(t.length > 200 ? `${t.slice(0, 200)}...` : t);
}

function causeCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function transportError(err: unknown, endpoint: string, url: URL, timeoutMs: number, unknownOutcome: boolean): StationError {
  if (err instanceof StationError) return err;
  const name = (err as { name?: unknown }).name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new StationError('timeout', `${endpoint}: no answer from ${url.origin} within ${timeoutMs} ms`, {
      endpoint,
      mayHaveMoved: unknownOutcome,
      retryable: !unknownOutcome,
      cause: err,
    });
  }
  const code = causeCode(err);
  // Refused: the request never reached the server, so nothing moved.
  const refused = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
  return new StationError('unreachable', `${endpoint}: cannot reach ${url.origin}${code ? ` (${code})` : ''}: ${(err as Error).message ?? String(err)}`, {
    endpoint,
    mayHaveMoved: unknownOutcome && !refused,
    retryable: refused || !unknownOutcome,
    cause: err,
  });
}
