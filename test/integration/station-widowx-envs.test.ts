import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ActionChunk } from '../../data-schemas/d-lan';
import { WIDOWX_ENVS_DEFAULT_ENV_PARAMS } from '../../data-schemas/station';
import { fileUri } from '../../data-schemas/uri';
import { createStationDriver, StationError, StationSafetyError, WidowXEnvsStation } from '../../activities/robot/station';
import { createStationActivities } from '../../activities/robot/episode/station-activities';
import { resolveTask, simulateEpisode, state7 } from '../../activities/robot/sim';
import { isAlive } from '../../activities/runtime/processes';
import type { PythonEnv } from '../../activities/runtime/python-env';
import { FileStore } from '../../activities/store';
import { loadConfig } from '../../infra/config';
import { ensurePythonEnv } from '../../infra/python';
import { startFakeArm, type FakeArm } from '../fixtures/widowx-server';
import { startWidowXEnvsServer, type WidowXEnvsServer } from '../fixtures/widowx-envs-server';
import { closedPort } from '../helpers/net';
import { rejectionOf } from '../helpers/failures';

const TASK = 'put the carrot on the plate';
const SEED = 7;

const demo = simulateEpisode(resolveTask(TASK), SEED, 0).demo;
/** The demonstrator's actions `from`..`from + n` of episode 0 for (TASK, SEED), as chunk actions. */
const demoChunk = (n: number, from = 0): ActionChunk => demo.steps.slice(from, from + n).map((s) => [s.action[0], s.action[1], s.action[2], s.action[6]]);
const demoPos = (k: number): readonly number[] => demo.steps[k]?.world.ee.pos ?? [];

function expectClose(a: readonly number[], b: readonly number[], digits = 9): void {
  expect(a.length).toBe(b.length);
  a.forEach((v, i) => expect(v).toBeCloseTo(b[i] ?? NaN, digits));
}

const expectRejected = (p: Promise<unknown>): Promise<StationError> => rejectionOf(p, StationError);

let python: PythonEnv;
beforeAll(async () => {
  python = await ensurePythonEnv(loadConfig().cacheDir);
});

describe("widowx-envs station driver against a widowx_envs robot server with the simulated arm behind", () => {
  let arm: FakeArm;
  let server: WidowXEnvsServer;
  const drivers: WidowXEnvsStation[] = [];
  const station = (options: Partial<ConstructorParameters<typeof WidowXEnvsStation>[0]> = {}): WidowXEnvsStation => {
    const d = new WidowXEnvsStation({ host: '127.0.0.1', port: server.port, requestTimeoutMs: 5_000, ...options, python: () => Promise.resolve(python) });
    drivers.push(d);
    return d;
  };
  beforeEach(async () => {
    arm = await startFakeArm({ task: TASK, seed: SEED, actionDelayMs: 5 });
    server = await startWidowXEnvsServer(python, { armUrl: arm.url, task: TASK });
  });
  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.close()));
    await server.close();
    await arm.close();
  });

  it('connects (handshake, init), resets and decodes observations into the frames an episode records', async () => {
    const d = station();
    const o = await d.reset({ instruction: 'ponga la zanahoria en el plato' });
    const wire = server.requests();
    expect(wire.map((r) => r.key ?? r.type)).toEqual(['hash', 'init', 'reset', 'obs']);
    expect(wire[1]).toMatchObject({ env_params: WIDOWX_ENVS_DEFAULT_ENV_PARAMS, image_size: 256 });
    expect(wire[3]?.keys).toEqual(['full_image', 'image', 'state']);
    expect([o.step, o.mimeType]).toEqual([0, 'image/jpeg']);
    expect(o.state).toEqual([...state7(arm.sim.simWorld())]);
    const meta = await sharp(o.image).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 256, 256]);
    // The frame is the simulator's camera image (float CHW on the wire), not noise or a transposed copy.
    const simFrame = (await arm.sim.observe()).image;
    const [ours, theirs] = await Promise.all([o.image, simFrame].map((img) => sharp(img).raw().toBuffer()));
    let diff = 0;
    for (let i = 0; i < (ours?.length ?? 0); i++) diff += Math.abs((ours?.[i] ?? 0) - (theirs?.[i] ?? 0));
    expect(diff / (ours?.length ?? 1)).toBeLessThan(4);
    // A second reset keeps the connection: no second handshake or init.
    await d.reset({ instruction: TASK });
    expect(server.requests().filter((r) => r.type === 'hash' || r.key === 'init')).toHaveLength(2);
  });

  it("reads the full_image JPEG (cv2's channel order) as the same picture, resized to the image size", async () => {
    const [byArray, byJpeg] = [station(), station({ cameraKey: 'full_image', imageSize: 128 })];
    const a = await byArray.reset({ instruction: TASK });
    const b = await byJpeg.reset({ instruction: TASK });
    const meta = await sharp(b.image).metadata();
    expect([meta.width, meta.height]).toEqual([128, 128]);
    const means = async (img: Uint8Array): Promise<number[]> => (await sharp(img).stats()).channels.slice(0, 3).map((c) => c.mean);
    const [ma, mb] = await Promise.all([means(a.image), means(b.image)]);
    ma.forEach((v, i) => expect(Math.abs(v - (mb[i] ?? NaN))).toBeLessThan(6));
    expect(b.state).toEqual(a.state);
  });

  it('sends each action as a blocking 7-D step [dx, dy, dz, 0, 0, 0, gripper] that moves the simulated arm exactly', async () => {
    const d = station();
    await d.reset({ instruction: TASK });
    const before = server.requests().length;
    const res = await d.execute(demoChunk(8), undefined, { expectedStep: 0 });
    expect(res).toMatchObject({ executed: 8, stopped: false });
    expect(res.trace.map((t) => t.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expectClose(res.observation.state.slice(0, 3), demoPos(8));
    expect(res.observation.state).toEqual([...state7(arm.sim.simWorld())]);
    res.trace.forEach((t, i) => expectClose(t.state.slice(0, 3), demoPos(i + 1)));
    const steps = server.requests().slice(before).filter((r) => r.key === 'step_action');
    expect(steps).toHaveLength(8);
    steps.forEach((s, i) => {
      const [dx, dy, dz, g] = demoChunk(8)[i] ?? [];
      expect(s).toMatchObject({ is_ndarray: true, dtype: 'float64', blocking: true });
      expect(s.action).toEqual([dx, dy, dz, 0, 0, 0, g]);
    });
    // The next chunk is planned from the last step's observation; a stale one is refused before anything moves.
    await expect(d.execute(demoChunk(2, 8), undefined, { expectedStep: 8 })).resolves.toMatchObject({ executed: 2 });
    const stale = await expectRejected(d.execute(demoChunk(2, 10), undefined, { expectedStep: 8 }));
    expect(stale).toMatchObject({ code: 'stale_observation', mayHaveMoved: false });
    const n = server.requests().length;
    const unsafe = await expectRejected(d.execute([[0, 0, 0.01, 1], [0.1, 0, 0, 1]]));
    expect(unsafe).toBeInstanceOf(StationSafetyError);
    expect((unsafe as StationSafetyError).limit).toBe('max_step');
    expect(server.requests().length).toBe(n);
    expectClose((await d.observe()).state.slice(0, 3), demoPos(10));
  });

  it('an abort or a safeStop ends the chunk after the step in progress; the next chunk is accepted', async () => {
    const d = station();
    await d.reset({ instruction: TASK });
    const ac = new AbortController();
    arm.events.once('action', () => ac.abort());
    const res = await d.execute(demoChunk(10), ac.signal);
    expect(res).toMatchObject({ executed: 1, stopped: true });
    expect(res.observation.step).toBe(1);
    expect(res.observation.state).toEqual([...state7(arm.sim.simWorld())]);
    arm.events.once('action', () => void d.safeStop('operator pressed stop'));
    const stopped = await d.execute(demoChunk(5, 1));
    expect(stopped).toMatchObject({ executed: 1, stopped: true });
    await expect(d.execute(demoChunk(1, 2))).resolves.toMatchObject({ executed: 1, stopped: false });
    expectClose((await d.observe()).state.slice(0, 3), demoPos(3));
    expect(server.requests().filter((r) => r.key === 'step_action')).toHaveLength(3);
  });

  it('a dead robot server gives a clear error, a restarted one is connected again by the next reset, an uninitialised arm is named', async () => {
    const d = station({ requestTimeoutMs: 1_000 });
    await d.reset({ instruction: TASK });
    server.kill();
    const lost = await expectRejected(d.observe());
    expect(lost).toMatchObject({ code: 'timeout', retryable: true });
    expect(lost.message).toMatch(/tcp:\/\/127\.0\.0\.1:\d+: observe: no answer from tcp:\/\/127\.0\.0\.1:\d+ within 1000 ms/);
    // The server comes back, restarted (not initialised): the driver says so, and a reset connects and inits again.
    const restarted = await startWidowXEnvsServer(python, { armUrl: arm.url, task: TASK, port: server.port });
    try {
      const fresh = await expectRejected(d.observe());
      expect(fresh).toMatchObject({ code: 'not_ready', retryable: true });
      expect(fresh.message).toMatch(/the robot server's arm is not initialised \(it answers an empty state\)/);
      await expect(d.reset({ instruction: TASK })).resolves.toMatchObject({ step: 0 });
      expect(restarted.requests().map((r) => r.key ?? r.type)).toEqual(['obs', 'hash', 'init', 'reset', 'obs']);
      await expect(d.execute(demoChunk(1))).resolves.toMatchObject({ executed: 1 });
      // Dead during a step: it may have moved, so the driver no longer trusts its step count.
      restarted.kill();
      const act = await expectRejected(d.execute(demoChunk(1, 1)));
      expect(act).toMatchObject({ code: 'timeout', mayHaveMoved: true, retryable: false });
      expect(act.message).toMatch(/^step_action 1 of 1: /);
      expect(await expectRejected(d.observe())).toMatchObject({ code: 'not_ready' });
    } finally {
      await restarted.close();
    }

    const nowhere = station({ port: await closedPort(), requestTimeoutMs: 300 });
    for (let i = 0; i < 2; i++) {
      const err = await expectRejected(nowhere.reset({ instruction: TASK }));
      expect(err).toMatchObject({ code: 'unreachable', retryable: true });
      expect(err.message).toMatch(/no robot server answers at tcp:\/\/127\.0\.0\.1:\d+ .*is widowx_env_service --server running there\?/);
    }
    // The same driver process answered both: nothing was restarted in a loop.
    expect(nowhere.pid !== undefined && isAlive(nowhere.pid)).toBe(true);
    expect((await expectRejected(nowhere.observe())).code).toBe('not_ready');

    const testing = await startWidowXEnvsServer(python, { armUrl: arm.url, task: TASK, testing: true });
    try {
      const uninit = await expectRejected(station({ port: testing.port }).reset({ instruction: TASK }));
      expect(uninit).toMatchObject({ code: 'not_ready' });
      expect(uninit.message).toMatch(/init: the robot server's arm is not initialised/);
    } finally {
      await testing.close();
    }
  });

  it('runs a short episode through the station activities: reset, chunks with their traces, frames in the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vla-widowx-envs-episode-'));
    try {
      const driver = createStationDriver({ kind: 'widowx-envs', host: '127.0.0.1', port: server.port }, { python: () => Promise.resolve(python) });
      drivers.push(driver as WidowXEnvsStation);
      const store = new FileStore();
      const activities = createStationActivities({ stationId: 'widowx-1', driver, store, stateDir: join(dir, 'station') });
      const ref = { episodeId: 'ep-widowx', outputUri: fileUri(join(dir, 'episode')) };
      let obs = await activities.stationReset({ ...ref, instruction: TASK });
      expect(obs.step).toBe(0);
      for (const [from, n] of [
        [0, 4],
        [4, 4],
      ] as const) {
        const exec = await activities.stationExecute({ ...ref, chunk: demoChunk(n, from), expectedStep: obs.step });
        expect(exec).toMatchObject({ executed: n, stopped: false });
        expect(exec.trace.map((t) => t.step)).toEqual(Array.from({ length: n }, (_, i) => from + i + 1));
        obs = exec.after;
      }
      expectClose(obs.state.slice(0, 3), demoPos(8));
      const frame = await store.get(obs.frameUri);
      expect((await sharp(frame).metadata()).format).toBe('jpeg');
      expect(await activities.stationEvaluate({ episodeId: ref.episodeId })).toBeNull();
      await activities.stationRelease({ episodeId: ref.episodeId });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
