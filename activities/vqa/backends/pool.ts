/**
 * The local inference processes of one worker. Each holds a model's weights (GPU memory on a GPU
 * worker), so at most `maxResident` stay loaded: starting another releases the least recently used
 * idle one, an idle one is released after `idleMs`, and `releaseAll` frees them all (before a trainer
 * starts on the same worker, and at shutdown). A released backend stays usable: its next request
 * starts a new process.
 *
 * Why on the worker and not as a workflow step at a sweep's end: an activity on a task queue reaches
 * one worker of that queue, not necessarily the one holding the model, and on a GPU queue (one slot)
 * it would wait behind a training run for hours.
 */

/** A backend's resident process, as the pool sees it. */
export interface ResidentModel {
  /** Names the model in log lines. */
  readonly label: string;
  /** Requests in flight, or a process starting: not to be released from under them. */
  readonly busy: boolean;
  /** Stops the process (the backend stays usable). */
  release(): Promise<void>;
}

export interface InferencePoolOptions {
  /** Most processes loaded at once. */
  maxResident: number;
  /** An idle process is released after this long. */
  idleMs: number;
  log?: (line: string) => void;
}

/** GPU workers keep one model loaded: a second would compete for the memory the first (or a trainer) needs. */
export const DEFAULT_GPU_MAX_RESIDENT = 1;
export const DEFAULT_INFERENCE_IDLE_MS = 120_000;

export class InferencePool {
  /** In least-recently-used order: a use moves an entry to the end. */
  private readonly resident = new Map<ResidentModel, { idleTimer?: NodeJS.Timeout }>();

  constructor(private readonly options: InferencePoolOptions) {
    if (!Number.isInteger(options.maxResident) || options.maxResident < 1) throw new Error(`inference pool: maxResident must be a whole number >= 1, got ${options.maxResident}`);
    if (!(options.idleMs >= 0)) throw new Error(`inference pool: idleMs must be >= 0, got ${options.idleMs}`);
  }

  /** How many processes are loaded (or loading). */
  get size(): number {
    return this.resident.size;
  }

  /**
   * Before `model` starts its process: releases the least recently used idle processes until it
   * fits. Busy ones are never released from under their requests; when every other one is busy
   * (only with more than one activity slot) the bound is exceeded and said so.
   */
  async admit(model: ResidentModel): Promise<void> {
    this.forget(model);
    const excess = this.resident.size + 1 - this.options.maxResident;
    const evicted = [...this.resident.keys()].filter((m) => !m.busy).slice(0, Math.max(0, excess));
    for (const m of evicted) this.forget(m);
    if (excess > evicted.length) this.options.log?.(`inference pool: ${this.resident.size + 1} models loaded (bound ${this.options.maxResident}): the others are busy`);
    this.resident.set(model, {});
    await Promise.all(evicted.map((m) => this.release(m, 'to make room')));
  }

  /** A request starts: the model is the most recently used, and not idle. */
  used(model: ResidentModel): void {
    const entry = this.resident.get(model);
    if (!entry) return;
    clearTimeout(entry.idleTimer);
    this.resident.delete(model);
    this.resident.set(model, {});
  }

  /** No request in flight: released after idleMs unless used again. */
  idle(model: ResidentModel): void {
    const entry = this.resident.get(model);
    if (!entry) return;
    clearTimeout(entry.idleTimer);
    entry.idleTimer = setTimeout(() => {
      if (this.resident.get(model) !== entry || model.busy) return;
      this.forget(model);
      void this.release(model, `idle for ${this.options.idleMs} ms`);
    }, this.options.idleMs);
    // An idle timer must not keep a finished worker alive.
    entry.idleTimer.unref();
  }

  /** The process exited or was closed by its backend. */
  exited(model: ResidentModel): void {
    this.forget(model);
  }

  /** Stops every process, busy or not: before a trainer needs the GPU, and at shutdown. */
  async releaseAll(reason: string): Promise<void> {
    const all = [...this.resident.keys()];
    for (const m of all) this.forget(m);
    await Promise.all(all.map((m) => this.release(m, reason)));
  }

  private forget(model: ResidentModel): void {
    clearTimeout(this.resident.get(model)?.idleTimer);
    this.resident.delete(model);
  }

  private async release(model: ResidentModel, why: string): Promise<void> {
    this.options.log?.(`inference pool: releasing ${model.label} (${why})`);
    await model.release().catch((err: unknown) => this.options.log?.(`inference pool: releasing ${model.label} failed: ${String(err)}`));
  }
}
