import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DRobTrajectory } from '../../data-schemas/d-rob';
import {
  createRng,
  createWorld,
  demonstrate,
  episodeRng,
  getObject,
  graspPoint,
  parseTask,
  renderFrame,
  resolveTask,
  restsOn,
  simulateEpisode,
  simulateEpisodes,
  simTrajectoryId,
  state7,
  step,
  SUPPORTED_TASKS,
  UnknownTaskError,
  type PendingTrajectory,
  type World,
} from '../../activities/robot/sim';
import { goTo, move } from '../helpers/sim';


async function collect(opts: Parameters<typeof simulateEpisodes>[0]): Promise<PendingTrajectory[]> {
  const out: PendingTrajectory[] = [];
  for await (const p of simulateEpisodes(opts)) out.push(p);
  return out;
}

describe('task parser', () => {
  it('parses the supported tasks and their short forms to the same task', () => {
    for (const text of SUPPORTED_TASKS) expect(resolveTask(text).text).toBe(text);
    expect(resolveTask('put carrot on plate').slug).toBe('put-carrot-on-plate');
    expect(resolveTask('Put the eggplant into the pan, then lift the fish.').slug).toBe('put-eggplant-in-pan-then-lift-fish');
    expect(resolveTask('stack green block on top of yellow block').slug).toBe('stack-green-block-on-yellow-block');
    expect(resolveTask('pick the aubergine up').slug).toBe('pick-up-eggplant');
    expect(parseTask('place the spoon on the cloth')).toEqual({ steps: [{ kind: 'pick_place', source: 'spoon', target: 'towel', stack: false }] });
  });

  it('maps every generated wording back to its task', () => {
    const rng = createRng(5);
    for (const text of SUPPORTED_TASKS) {
      const task = resolveTask(text);
      for (let i = 0; i < 30; i++) expect(resolveTask(task.phrase(rng)).slug).toBe(task.slug);
    }
  });

  it('rejects what it cannot simulate, listing the supported tasks', () => {
    expect(() => parseTask('open the oven')).toThrow(UnknownTaskError);
    expect(() => parseTask('open the oven')).toThrow(/Supported tasks: "put the carrot on the plate"/);
    expect(() => parseTask('put the pan on the plate')).toThrow(/cannot be grasped/);
    expect(() => parseTask('put the carrot on the fish')).toThrow(/nothing can be put on or in the fish/);
    expect(() => parseTask('  ')).toThrow(UnknownTaskError);
  });
});

describe('world: Bridge conventions and the grasp rule', () => {
  const scene = (): World =>
    createWorld(
      [
        { kind: 'carrot', x: 0.25, y: 0.1 },
        { kind: 'plate', x: 0.35, y: -0.08 },
        { kind: 'pan', x: 0.22, y: -0.1 },
      ],
      { pos: [0.3, 0, 0.15], rpy: [0, 0, 0], gripper: 1 },
    );

  it('+x forward, +y left, +z up; gripper 1 = open; steps are clipped', () => {
    const w = scene();
    expect(state7(w)).toEqual([0.3, 0, 0.15, 0, 0, 0, 1]);
    const fwd = step(w, move([0.01, 0, 0], 1));
    expect(fwd.ee.pos[0]).toBeCloseTo(0.31, 12);
    expect(step(w, move([0, 0.01, 0], 1)).ee.pos[1]).toBeCloseTo(0.01, 12);
    expect(step(w, move([0, 0, 0.01], 1)).ee.pos[2]).toBeCloseTo(0.16, 12);
    expect(step(w, move([0.2, 0, 0], 1)).ee.pos[0]).toBeCloseTo(0.33, 12);
    expect(step(w, move([0, 0, -0.03], 1)).ee.pos[2]).toBeCloseTo(0.12, 12);
    expect(step(w, move([0, 0, 0], 0.3)).ee.gripper).toBe(0.3);
  });

  it('closing far from any object grasps nothing', () => {
    let w = goTo(scene(), [0.3, 0.0, 0.01], 1);
    w = step(w, move([0, 0, 0], 0));
    expect(w.held).toBeNull();
    expect(w.ee.gripper).toBe(0);
  });

  it('closing at the object grasps it; it moves with the gripper and lands ON the plate', () => {
    let w = goTo(scene(), graspPoint(getObject(scene(), 'carrot')), 1);
    w = step(w, move([0, 0, 0], 0.05));
    expect(w.held?.id).toBe('carrot');
    expect(getObject(w, 'carrot').support).toEqual({ relation: 'held' });
    expect(w.ee.gripper).toBeGreaterThan(0.05); // cannot close past the carrot
    w = goTo(w, [w.ee.pos[0], w.ee.pos[1], 0.12], 0.05);
    expect(getObject(w, 'carrot').pos[2]).toBeGreaterThan(0.1);
    w = goTo(w, [0.35, -0.08, 0.05], 0.05);
    w = step(w, move([0, 0, 0], 1));
    expect(w.held).toBeNull();
    expect(restsOn(w, 'carrot', 'plate')).toBe(true);
    expect(getObject(w, 'carrot').pos[2]).toBeCloseTo(0.012, 9);
  });

  it('a release over the pan puts it IN the pan, elsewhere onto the table', () => {
    let w = goTo(scene(), graspPoint(getObject(scene(), 'carrot')), 1);
    w = step(w, move([0, 0, 0], 0));
    const inPan = step(goTo(w, [0.22, -0.1, 0.08], 0), move([0, 0, 0], 1));
    expect(getObject(inPan, 'carrot').support).toEqual({ relation: 'in', target: 'pan' });
    const onTable = step(goTo(w, [0.4, 0.15, 0.08], 0), move([0, 0, 0], 1));
    expect(getObject(onTable, 'carrot').support).toEqual({ relation: 'on', target: 'table' });
    expect(getObject(onTable, 'carrot').pos[2]).toBe(0);
  });

  it('cannot grasp an object that has another on top of it', () => {
    let w = createWorld([
      { kind: 'yellow_block', x: 0.3, y: 0 },
      { kind: 'green_block', x: 0.3, y: 0.15 },
    ]);
    w = goTo(w, graspPoint(getObject(w, 'green_block')), 1);
    w = step(w, move([0, 0, 0], 0));
    w = goTo(w, [0.3, 0.0, 0.09], 0);
    w = step(w, move([0, 0, 0], 1));
    expect(restsOn(w, 'green_block', 'yellow_block')).toBe(true);
    w = goTo(w, graspPoint(getObject(w, 'yellow_block')), 1);
    w = step(w, move([0, 0, 0], 0));
    expect(w.held).toBeNull();
  });
});

describe('scripted demonstrator', () => {
  const SEEDS = 10;
  const results = SUPPORTED_TASKS.map((text) => {
    const task = resolveTask(text);
    const demos = Array.from({ length: SEEDS }, (_, s) => demonstrate(task, episodeRng(s, task.slug, 0)));
    return { task, demos };
  });

  it('succeeds on every supported task (deterministic counts over 10 seeds)', () => {
    const counts = Object.fromEntries(results.map(({ task, demos }) => [task.slug, demos.filter((d) => d.outcome.success).length]));
    expect(counts).toEqual({
      'put-carrot-on-plate': 10,
      'pick-up-eggplant': 10,
      'put-eggplant-in-pan-then-lift-fish': 10,
      'put-spoon-on-towel': 10,
      'stack-green-block-on-yellow-block': 10,
      'put-eggplant-in-basket': 10,
    });
    for (const { demos } of results) for (const d of demos) expect(d.outcome.score).toBe(d.outcome.maxScore);
  });

  it('records full-length, teleoperation-like trajectories whose actions match the state deltas', () => {
    for (const { task, demos } of results) {
      for (const d of demos) {
        expect(d.steps.length, task.slug).toBeGreaterThanOrEqual(30);
        expect(d.steps.length, task.slug).toBeLessThanOrEqual(160);
        expect(d.steps[0]?.action.slice(0, 6)).toEqual([0, 0, 0, 0, 0, 0]);
        const states = [...d.steps.map((s) => s.state), state7(d.final)];
        d.steps.forEach((s, t) => {
          const next = states[t + 1]!;
          for (let k = 0; k < 6; k++) expect(Math.abs(s.action[k]! - (next[k]! - s.state[k]!))).toBeLessThan(1e-12);
          for (let k = 0; k < 3; k++) expect(Math.abs(s.action[k]!)).toBeLessThanOrEqual(0.02 + 1e-12);
          for (let k = 3; k < 6; k++) expect(Math.abs(s.action[k]!)).toBeLessThan(0.02);
          expect(s.action[6]).toBeGreaterThanOrEqual(0);
          expect(s.action[6]).toBeLessThanOrEqual(1);
        });
        const moving = d.steps.map((s) => Math.hypot(s.action[0], s.action[1], s.action[2])).filter((m) => m > 0.002);
        const mean = moving.reduce((a, b) => a + b, 0) / moving.length;
        expect(mean).toBeGreaterThan(0.006);
        expect(mean).toBeLessThan(0.016);
        // Gripper commands sit near 0/1 with a few in-between values while it moves.
        const between = d.steps.filter((s) => s.action[6] > 0.1 && s.action[6] < 0.9).length;
        expect(between).toBeGreaterThan(0);
        expect(between).toBeLessThan(12);
      }
    }
  });

  it('gives partial credit when the goal is missed', () => {
    const task = resolveTask('put the carrot on the plate');
    const w0 = createWorld([
      { kind: 'carrot', x: 0.25, y: 0.1 },
      { kind: 'plate', x: 0.35, y: -0.08 },
    ]);
    let w = goTo(w0, graspPoint(getObject(w0, 'carrot')), 1);
    w = step(w, move([0, 0, 0], 0));
    const lifted = goTo(w, [0.25, 0.1, 0.12], 0);
    const dropped = step(goTo(lifted, [0.4, 0.15, 0.08], 0), move([0, 0, 0], 1));
    const outcome = task.evaluate([w0, w, lifted, dropped]);
    expect(outcome.success).toBe(false);
    expect(outcome.milestones).toEqual([
      { name: 'grasp the carrot', achieved: true },
      { name: 'carrot on the plate', achieved: false },
    ]);
    expect(outcome.score).toBe(1);
    expect(resolveTask('pick up the carrot').evaluate([w0, w, lifted]).success).toBe(true);
    expect(resolveTask('pick up the carrot').evaluate([w0, w, lifted, dropped]).success).toBe(false);
  });
});

describe('simulateEpisodes', () => {
  const opts = { tasks: ['put carrot on plate', 'pick up the eggplant'], n: 2, seed: 3, cameras: ['image_0', 'image_3'] as const };

  it('is deterministic per seed, schema-valid, and writes 256x256 JPEG frames it references', async () => {
    const a = await collect({ ...opts, cameras: [...opts.cameras] });
    const b = await collect({ ...opts, cameras: [...opts.cameras] });
    expect(a.map((p) => p.trajectory.id)).toEqual([
      'sim-put-carrot-on-plate-s3-e000',
      'sim-put-carrot-on-plate-s3-e001',
      'sim-pick-up-eggplant-s3-e000',
      'sim-pick-up-eggplant-s3-e001',
    ]);
    expect(b.map((p) => p.trajectory)).toEqual(a.map((p) => p.trajectory));
    a.forEach((p, i) => {
      const q = b[i]!;
      expect([...q.files.keys()]).toEqual([...p.files.keys()]);
      for (const [path, bytes] of p.files) expect(Buffer.from(q.files.get(path)!).equals(Buffer.from(bytes))).toBe(true);
    });

    for (const { trajectory: t, files } of a) {
      expect(() => DRobTrajectory.parse(t)).not.toThrow();
      expect(t.robot).toBe('widowx_250s');
      expect(t.controlHz).toBe(5);
      expect(t.cameras).toEqual(['image_0', 'image_3']);
      expect(t.source).toMatchObject({ kind: 'simulator', seed: 3, success: true });
      expect(resolveTask(t.instruction).text).toBe(t.source.kind === 'simulator' ? t.source.task : '');
      expect(t.steps[0]?.isFirst).toBe(true);
      expect(t.steps.at(-1)?.isLast).toBe(true);
      expect(t.steps.at(-1)?.isTerminal).toBe(true);
      expect(t.steps.filter((s) => s.isLast || s.isFirst)).toHaveLength(2);
      const refs = t.steps.flatMap((s) => Object.values(s.frames));
      expect(new Set(refs)).toEqual(new Set(files.keys()));
      expect(refs[0]).toBe(`frames/${t.id}/image_0/000.jpg`);
    }
    const first = a[0]!;
    for (const path of [`frames/${first.trajectory.id}/image_0/000.jpg`, `frames/${first.trajectory.id}/image_3/010.jpg`]) {
      const bytes = first.files.get(path);
      expect(bytes).toBeDefined();
      const meta = await sharp(bytes).metadata();
      expect({ format: meta.format, width: meta.width, height: meta.height }).toEqual({ format: 'jpeg', width: 256, height: 256 });
    }
  });

  it('differs for another seed, and episodes do not depend on the other tasks in the run', async () => {
    const other = await collect({ tasks: ['put the carrot on the plate'], n: 1, seed: 4 });
    const same = await collect({ tasks: ['put the carrot on the plate'], n: 1, seed: 3 });
    const ep = simulateEpisode(resolveTask('put the carrot on the plate'), 3, 0);
    expect(same[0]?.trajectory.steps.map((s) => s.action)).toEqual(ep.demo.steps.map((s) => s.action));
    expect(other[0]?.trajectory.id).toBe(simTrajectoryId('put-carrot-on-plate', 4, 0));
    expect(other[0]?.trajectory.steps.map((s) => s.state)).not.toEqual(same[0]?.trajectory.steps.map((s) => s.state));
    const f0 = (p: PendingTrajectory | undefined): Buffer => Buffer.from(p!.files.get(`frames/${p!.trajectory.id}/image_0/000.jpg`)!);
    expect(f0(other[0]).equals(f0(same[0]))).toBe(false);
  });

  it('rejects unknown tasks before simulating anything', async () => {
    await expect(collect({ tasks: ['put the carrot on the plate', 'juggle the eggs'], n: 1, seed: 0 })).rejects.toThrow(UnknownTaskError);
    await expect(collect({ tasks: ['pick up the carrot'], n: 1, seed: -1 })).rejects.toThrow(RangeError);
  });

  it('renders the same world to the same bytes, and the gripper opening shows', async () => {
    const w = createWorld([{ kind: 'carrot', x: 0.3, y: 0 }], { pos: [0.3, 0.05, 0.1], rpy: [0, 0, 0], gripper: 1 });
    const closed = { ...w, ee: { ...w.ee, gripper: 0 } };
    const [a, b, c] = await Promise.all([renderFrame(w, 'image_0'), renderFrame(w, 'image_0'), renderFrame(closed, 'image_0')]);
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(false);
  });
});
