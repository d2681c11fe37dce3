import { createServer } from 'node:net';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ActionChunk } from '../../data-schemas/d-lan';
import {
  createStationDriver,
  SimStationDriver,
  StationError,
  StationSafetyError,
  WidowXHttpStation,
  type Observation,
} from '../../activities/robot/station';
import { resolveTask, simulateEpisode, state7 } from '../../activities/robot/sim';
import { startFakeArm, type FakeArm } from '../fixtures/widowx-server';
import { rejectionOf } from '../helpers/failures';

const TASK = 'put the carrot on the plate';
const SEED = 7;

const isJpeg = (b: Uint8Array): boolean => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/** The demonstrator's first `n` actions of episode 0 for (TASK, SEED), as chunk actions. */
function demoChunk(n: number, from = 0): ActionChunk {
  const demo = simulateEpisode(resolveTask(TASK), SEED, 0).demo;
  return demo.steps.slice(from, from + n).map((s) => [s.action[0], s.action[1], s.action[2], s.action[6]]);
}

function demoPos(k: number): readonly number[] {
  const demo = simulateEpisode(resolveTask(TASK), SEED, 0).demo;
  const s = demo.steps[k];
  if (!s) throw new Error(`no demo step ${k}`);
  return s.world.ee.pos;
}

const expectRejected = (p: Promise<unknown>): Promise<StationError> => rejectionOf(p, StationError);

function expectClose(a: readonly number[], b: readonly number[], digits = 9): void {
  expect(a.length).toBe(b.length);
  a.forEach((v, i) => expect(v).toBeCloseTo(b[i] ?? NaN, digits));
}

describe('sim station driver', () => {
  let sim: SimStationDriver;
  beforeEach(() => {
    sim = new SimStationDriver({ seed: SEED });
  });
  afterEach(async () => {
    await sim.close();
  });

  it('resets to the seeded scene of the simulator and observes a JPEG frame and the state', async () => {
    const o = await sim.reset({ instruction: 'pon la zanahoria en el plato', scene: TASK });
    const episode = simulateEpisode(resolveTask(TASK), SEED, 0);
    expect(sim.simWorld()).toEqual(episode.demo.steps[0]?.world);
    expect(o.step).toBe(0);
    expect(o.state).toEqual([...state7(sim.simWorld())]);
    expect(o.mimeType).toBe('image/jpeg');
    expect(isJpeg(o.image)).toBe(true);
    const meta = await sharp(o.image).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 256, 256]);
    const again = await sim.observe();
    expect(Buffer.from(again.image).equals(Buffer.from(o.image))).toBe(true);
    // Another seed or scene, another world.
    await sim.reset({ instruction: TASK, seed: SEED + 1 });
    expect(sim.simWorld()).not.toEqual(episode.demo.steps[0]?.world);
    await sim.reset({ instruction: 'lift the eggplant', scene: 'pick up the eggplant' });
    expect(sim.simTask().slug).toBe('pick-up-eggplant');
    const bad = await expectRejected(sim.reset({ instruction: 'x', scene: 'juggle the plates' }));
    expect(bad.code).toBe('bad_request');
    expect(bad.message).toMatch(/cannot simulate/);
  });

  it('executes the demonstrator\'s first actions and moves the gripper exactly as the demonstration did', async () => {
    const before = await sim.reset({ instruction: TASK });
    const chunk = demoChunk(8);
    const res = await sim.execute(chunk);
    expect(res).toMatchObject({ executed: 8, stopped: false });
    expect(res.observation.step).toBe(8);
    expectClose(res.observation.state.slice(0, 3), demoPos(8));
    // The displacement is the sum of the chunk's translations: nothing was clipped.
    const moved = [0, 1, 2].map((k) => (res.observation.state[k] ?? 0) - (before.state[k] ?? 0));
    const sum = [0, 1, 2].map((k) => chunk.reduce((s, a) => s + a[k as 0 | 1 | 2], 0));
    expectClose(moved, sum);
    expect(Math.hypot(...moved)).toBeGreaterThan(0.02);
    expect(res.observation.state[6]).toBeGreaterThan(0.9); // still open
    expect(sim.simHistory()).toHaveLength(9);
    // The next chunk continues from there, like the demonstration.
    const next = await sim.execute(demoChunk(6, 8));
    expectClose(next.observation.state.slice(0, 3), demoPos(14));
  });

  it('executes an action larger than the simulator\'s per-step limit without clipping it', async () => {
    const before = await sim.reset({ instruction: TASK });
    const res = await sim.execute([[0.045, -0.02, 0, 1]]);
    expect(res.executed).toBe(1);
    expectClose(res.observation.state.slice(0, 3), [(before.state[0] ?? 0) + 0.045, (before.state[1] ?? 0) - 0.02, before.state[2] ?? 0]);
    expect(res.observation.step).toBe(1);
    expect(sim.simHistory()).toHaveLength(3); // two control steps of the simulator
  });

  it('rejects an unsafe chunk as a whole and leaves the state unchanged', async () => {
    const before = await sim.reset({ instruction: TASK });
    const world = sim.simWorld();
    const unsafe: ActionChunk = [...demoChunk(3), [0, 0, 0.06, 1], ...demoChunk(2, 3)];
    const err = await expectRejected(sim.execute(unsafe));
    expect(err).toBeInstanceOf(StationSafetyError);
    expect((err as StationSafetyError).actionIndex).toBe(3);
    expect((err as StationSafetyError).limit).toBe('max_step');
    // Out of the box only after 5 actions of 3 cm down from ~15 cm.
    const down: ActionChunk = Array.from({ length: 8 }, () => [0, 0, -0.03, 1]);
    const e2 = (await expectRejected(sim.execute(down))) as StationSafetyError;
    expect(e2.limit).toBe('workspace');
    expect(e2.actionIndex).toBe(Math.floor(((before.state[2] ?? 0) - 0.004) / 0.03));
    const after = await sim.observe();
    expect(after.state).toEqual(before.state);
    expect(after.step).toBe(0);
    expect(sim.simWorld()).toEqual(world);
    expect(sim.simHistory()).toHaveLength(1);
  });

  it('stops after the current action when the signal aborts mid-chunk', async () => {
    const ac = new AbortController();
    const stations = new SimStationDriver({
      seed: SEED,
      onAction: (i) => {
        if (i === 1) ac.abort();
      },
    });
    await stations.reset({ instruction: TASK });
    const res = await stations.execute(demoChunk(8), ac.signal);
    expect(res).toMatchObject({ executed: 2, stopped: true });
    expect(res.observation.step).toBe(2);
    expectClose(res.observation.state.slice(0, 3), demoPos(2));
    // An already aborted signal executes nothing.
    const none = await stations.execute(demoChunk(2, 2), ac.signal);
    expect(none).toMatchObject({ executed: 0, stopped: true });
    expect(none.observation.step).toBe(2);
    await stations.close();
  });

  it('safeStop halts a running chunk, keeps the gripper as it is, and the next chunk is accepted', async () => {
    const slow = new SimStationDriver({ seed: 3, stepDelayMs: 20 });
    await slow.reset({ instruction: 'pick up the eggplant' });
    const running = slow.execute(Array.from({ length: 20 }, () => [0.005, 0, 0, 0.2] as [number, number, number, number]));
    await new Promise((r) => setTimeout(r, 50));
    await slow.safeStop('operator pressed stop');
    const res = await running;
    expect(res.stopped).toBe(true);
    expect(res.executed).toBeGreaterThan(0);
    expect(res.executed).toBeLessThan(20);
    expect(res.observation.state[6]).toBeCloseTo(0.2, 9); // not opened by the stop
    expect(slow.lastStopReason()).toBe('operator pressed stop');
    await expect(slow.execute([[0, 0, 0.01, 0.2]])).resolves.toMatchObject({ executed: 1, stopped: false });
    await slow.close();
    expect((await expectRejected(slow.observe())).code).toBe('closed');
  });

  it('is refused before a reset and while another chunk runs', async () => {
    expect((await expectRejected(sim.observe())).code).toBe('not_ready');
    expect((await expectRejected(sim.execute([[0, 0, 0, 1]]))).code).toBe('not_ready');
    const slow = new SimStationDriver({ stepDelayMs: 10 });
    await slow.reset({ instruction: TASK });
    const first = slow.execute(Array.from({ length: 5 }, () => [0, 0, 0.001, 1] as [number, number, number, number]));
    const busy = await expectRejected(slow.execute([[0, 0, 0, 1]]));
    expect(busy.code).toBe('busy');
    expect(busy.retryable).toBe(true);
    await expect(first).resolves.toMatchObject({ executed: 5 });
    await slow.close();
  });

  it('is built from a station config', async () => {
    const d = createStationDriver({ kind: 'sim', seed: SEED });
    expect(d.kind).toBe('sim');
    expect((await d.reset({ instruction: TASK })).step).toBe(0);
    await d.close();
    expect(createStationDriver({ kind: 'widowx-http', url: 'http://127.0.0.1:1/' }).kind).toBe('widowx-http');
  });
});

describe('widowx-http station driver against a fake arm server', () => {
  let arm: FakeArm;
  let station: WidowXHttpStation;
  beforeEach(async () => {
    arm = await startFakeArm({ task: TASK, seed: SEED, actionDelayMs: 5 });
    station = new WidowXHttpStation({ url: arm.url, requestTimeoutMs: 2_000, actionTimeoutMs: 500 });
  });
  afterEach(async () => {
    await station.close();
    await arm.close();
  });

  const paths = (): string[] => arm.requests.map((r) => `${r.method} ${r.path}`);

  it('resets, observes and executes over the protocol, matching the simulator behind it', async () => {
    const o = await station.reset({ instruction: 'ponga la zanahoria en el plato', seed: SEED });
    expect(arm.requests[0]?.body).toEqual({ instruction: 'ponga la zanahoria en el plato', seed: SEED });
    expect(isJpeg(o.image)).toBe(true);
    expect(o.state).toEqual([...state7(arm.sim.simWorld())]);
    expect(o.step).toBe(0);
    const observed: Observation = await station.observe();
    expect(Buffer.from(observed.image).equals(Buffer.from(o.image))).toBe(true);

    const res = await station.execute(demoChunk(8));
    expect(res).toMatchObject({ executed: 8, stopped: false });
    expectClose(res.observation.state.slice(0, 3), demoPos(8));
    expect(res.observation.state).toEqual([...state7(arm.sim.simWorld())]);
    const act = arm.requests.find((r) => r.path === '/act');
    expect(act?.body).toMatchObject({ blocking: true, expected_step: 0, actions: demoChunk(8) });
    // The next chunk is planned from the /act's observation: no extra GET.
    await station.execute(demoChunk(2, 8));
    expect(paths()).toEqual(['POST /reset', 'GET /observation', 'POST /act', 'POST /act']);
    expect(arm.requests[3]?.body).toMatchObject({ expected_step: 8 });
  });

  it('rejects an unsafe chunk client-side before any request is sent', async () => {
    await station.reset({ instruction: TASK });
    const before = arm.sim.simWorld();
    const n = arm.requests.length;
    for (const [chunk, index, limit] of [
      [[[0.01, 0, 0, 1], [0.1, 0, 0, 1]], 1, 'max_step'],
      [Array.from({ length: 10 }, () => [0, 0, -0.03, 1]), 4, 'workspace'],
      [[[0, 0, 0, 1], [0, 0, 0, 1], [Number.NaN, 0, 0, 1]], 2, 'finite'],
      [[[0, 0, 0, 1.5]], 0, 'gripper_range'],
    ] as [ActionChunk, number, string][]) {
      const err = await expectRejected(station.execute(chunk));
      expect(err).toBeInstanceOf(StationSafetyError);
      expect(err.message).toMatch(new RegExp(`^action ${index}:`));
      expect([(err as StationSafetyError).actionIndex, (err as StationSafetyError).limit]).toEqual([index, limit]);
    }
    expect(arm.requests.length).toBe(n);
    expect(paths()).not.toContain('POST /act');
    expect(arm.sim.simWorld()).toEqual(before);
  });

  it('the server checks again: a chunk the client would allow under looser limits is refused with 422', async () => {
    const loose = new WidowXHttpStation({ url: arm.url, safety: { maxStepMeters: 0.2 } });
    await loose.reset({ instruction: TASK });
    const err = await expectRejected(loose.execute([[0.1, 0, 0, 1]]));
    expect(err).toMatchObject({ code: 'unsafe_action', status: 422, serverCode: 'unsafe_action', mayHaveMoved: false });
    expect(err.message).toMatch(/POST \/act: HTTP 422 unsafe_action: action 0: translation 0\.1 m exceeds/);
    expect((await loose.observe()).step).toBe(0);
  });

  it('names a 500 with the server\'s code and message', async () => {
    await station.reset({ instruction: TASK });
    arm.failNext('/observation', '500');
    const err = await expectRejected(station.observe());
    expect(err).toMatchObject({ code: 'server_error', status: 500, serverCode: 'hardware_fault', endpoint: 'GET /observation', retryable: true });
    expect(err.message).toMatch(/GET \/observation: HTTP 500 hardware_fault: scripted fault: the wrist motor/);
    // A failed /act may have moved the arm: not retryable, and the next chunk starts from a fresh observation.
    arm.failNext('/act', '500');
    const act = await expectRejected(station.execute(demoChunk(2)));
    expect(act).toMatchObject({ code: 'server_error', mayHaveMoved: true, retryable: false });
    const n = arm.requests.length;
    await station.execute(demoChunk(2));
    expect(paths().slice(n)).toEqual(['GET /observation', 'POST /act']);
  });

  it('gives up on a server that does not answer, within the time limit', async () => {
    await station.reset({ instruction: TASK });
    const quick = new WidowXHttpStation({ url: arm.url, requestTimeoutMs: 300 });
    arm.failNext('/observation', 'timeout');
    const t0 = Date.now();
    const err = await expectRejected(quick.observe());
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(err).toMatchObject({ code: 'timeout', endpoint: 'GET /observation', retryable: true, mayHaveMoved: false });
    expect(err.message).toMatch(/no answer from http:\/\/127\.0\.0\.1:\d+ within 300 ms/);
    arm.failNext('/act', 'timeout');
    const act = await expectRejected(new WidowXHttpStation({ url: arm.url, requestTimeoutMs: 200, actionTimeoutMs: 10 }).execute([[0, 0, 0.01, 1]]));
    expect(act).toMatchObject({ code: 'timeout', endpoint: 'POST /act', retryable: false, mayHaveMoved: true });
  });

  it('names malformed and off-protocol answers', async () => {
    arm.failNext('/reset', 'malformed');
    const bad = await expectRejected(station.reset({ instruction: TASK }));
    expect(bad).toMatchObject({ code: 'protocol_error', status: 200, endpoint: 'POST /reset' });
    expect(bad.message).toMatch(/answer is not JSON/);
    arm.failNext('/reset', 'bad_shape');
    const shape = await expectRejected(station.reset({ instruction: TASK }));
    expect(shape.code).toBe('protocol_error');
    expect(shape.message).toMatch(/does not follow the protocol: image_jpeg_b64: .*state/);
    await expect(station.reset({ instruction: TASK })).resolves.toMatchObject({ step: 0 });
  });

  it('maps the server\'s refusals: not reset yet, a stale observation, an unreachable server', async () => {
    const fresh = await expectRejected(station.observe());
    expect(fresh).toMatchObject({ code: 'not_ready', status: 503, retryable: true });
    await station.reset({ instruction: TASK });
    // Another client moves the arm: this driver's observation is now stale and its chunk is refused.
    const other = new WidowXHttpStation({ url: arm.url });
    await other.execute(demoChunk(2));
    const stale = await expectRejected(station.execute(demoChunk(2, 2)));
    expect(stale).toMatchObject({ code: 'stale_observation', status: 409, mayHaveMoved: false });
    expect(arm.sim.simWorld().t).toBe(2);
    // After the refusal the driver observes again, so the same chunk now runs once.
    await expect(station.execute(demoChunk(2, 2))).resolves.toMatchObject({ executed: 2 });
    expectClose((await station.observe()).state.slice(0, 3), demoPos(4));

    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const gone = await expectRejected(new WidowXHttpStation({ url: `http://127.0.0.1:${port}` }).observe());
    expect(gone).toMatchObject({ code: 'unreachable', retryable: true });
    expect(gone.message).toMatch(/ECONNREFUSED/);
  });

  it('an abort mid-chunk sends /stop and the arm stops after the current action', async () => {
    const slow = await startFakeArm({ task: TASK, seed: SEED, actionDelayMs: 40 });
    const client = new WidowXHttpStation({ url: slow.url });
    try {
      await client.reset({ instruction: TASK });
      const ac = new AbortController();
      slow.events.once('action', () => ac.abort());
      const res = await client.execute(demoChunk(10), ac.signal);
      expect(res.stopped).toBe(true);
      expect(res.executed).toBeGreaterThanOrEqual(1);
      expect(res.executed).toBeLessThanOrEqual(2);
      expect(res.observation.step).toBe(res.executed);
      expectClose(res.observation.state.slice(0, 3), demoPos(res.executed));
      expect(res.observation.state).toEqual([...state7(slow.sim.simWorld())]);
      const stop = slow.requests.find((r) => r.path === '/stop');
      expect(stop?.body).toMatchObject({ reason: 'the episode aborted the chunk' });
      expect(typeof (stop?.body as { act_id?: unknown }).act_id).toBe('string');
      // safeStop is a plain /stop; the next chunk is accepted.
      await client.safeStop('operator');
      await expect(client.execute(demoChunk(1, res.executed))).resolves.toMatchObject({ executed: 1 });
    } finally {
      await client.close();
      await slow.close();
    }
  });
});
