/**
 * Bounded concurrency for store calls. Failures are recorded rather than left in a rejected
 * promise nobody awaits; the caller sees the first one on its next `add` or `throwIfFailed`.
 */
export class TaskPool {
  private readonly inFlight = new Set<Promise<void>>();
  private error: { err: unknown } | undefined;

  constructor(private readonly limit: number) {}

  async add(task: () => Promise<void>): Promise<void> {
    while (this.inFlight.size >= this.limit) await Promise.race(this.inFlight);
    this.throwIfFailed();
    const p: Promise<void> = Promise.resolve()
      .then(task)
      .then(
      () => {
        this.inFlight.delete(p);
      },
      (err: unknown) => {
        this.inFlight.delete(p);
        this.error ??= { err };
      },
    );
    this.inFlight.add(p);
  }

  /** Waits for every task in flight, successful or not; never throws. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  throwIfFailed(): void {
    if (this.error) throw this.error.err;
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first failure. */
export async function forEachConcurrent<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const pool = new TaskPool(limit);
  try {
    for (const item of items) await pool.add(() => fn(item));
  } finally {
    await pool.settle();
  }
  pool.throwIfFailed();
}
