import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { InferencePool, type ResidentModel } from '../../activities/vqa/backends/pool';

/** A model whose "process" is a flag: what the pool decides, without loading weights (the integration test loads real ones). */
function model(label: string): ResidentModel & { loaded: boolean; inFlight: number } {
  const m = {
    label,
    loaded: false,
    inFlight: 0,
    get busy() {
      return m.inFlight > 0;
    },
    release: () => {
      m.loaded = false;
      return Promise.resolve();
    },
  };
  return m;
}

async function load(pool: InferencePool, m: ReturnType<typeof model>): Promise<void> {
  await pool.admit(m);
  m.loaded = true;
}

describe('InferencePool', () => {
  it('keeps at most maxResident loaded, releasing the least recently used idle one', async () => {
    const pool = new InferencePool({ maxResident: 2, idleMs: 60_000 });
    const [a, b, c] = [model('a'), model('b'), model('c')];
    await load(pool, a);
    await load(pool, b);
    pool.used(a);
    await load(pool, c);
    expect([a.loaded, b.loaded, c.loaded]).toEqual([true, false, true]);
    expect(pool.size).toBe(2);
  });

  it('never releases a busy model from under its requests; the bound is exceeded instead, and said', async () => {
    const lines: string[] = [];
    const pool = new InferencePool({ maxResident: 1, idleMs: 60_000, log: (l) => lines.push(l) });
    const [a, b] = [model('a'), model('b')];
    await load(pool, a);
    a.inFlight = 1;
    await load(pool, b);
    expect([a.loaded, b.loaded]).toEqual([true, true]);
    expect(lines.join('\n')).toContain('2 models loaded (bound 1)');
  });

  it('releases an idle model after idleMs unless it is used again, and all of them on releaseAll', async () => {
    const pool = new InferencePool({ maxResident: 3, idleMs: 50 });
    const [a, b, c] = [model('a'), model('b'), model('c')];
    await load(pool, a);
    await load(pool, b);
    await load(pool, c);
    pool.idle(a);
    pool.idle(b);
    pool.used(b);
    while (a.loaded) await sleep(10);
    expect([a.loaded, b.loaded, c.loaded]).toEqual([false, true, true]);
    await pool.releaseAll('a trainer starts');
    expect([b.loaded, c.loaded]).toEqual([false, false]);
    expect(pool.size).toBe(0);
  });

  it('refuses a bound below 1', () => {
    expect(() => new InferencePool({ maxResident: 0, idleMs: 1 })).toThrow(/maxResident must be a whole number >= 1, got 0/);
  });
});
