import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StationError } from '../../activities/robot/station/errors';
import { planSimEpisode, simScene, SimStationDriver } from '../../activities/robot/station/sim';
import { resolveTask } from '../../activities/robot/sim/tasks';
import { findObject } from '../../activities/robot/sim/world';

async function refusal(p: Promise<unknown>): Promise<StationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof StationError)) throw new Error(`expected a StationError, got ${String(err)}`);
  return err;
}

/**
 * What a simulated station sets up and judges an episode against: the episode's instruction, never
 * a station default.
 */
describe('sim station: the scene and the task come from the episode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vla-sim-instruction-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('without a scene lays out what the instruction asks for, in any language it reads', async () => {
    for (const instruction of ['pick up the eggplant', 'recoge la berenjena', '拿起茄子', 'बैंगन उठाओ']) {
      const sim = new SimStationDriver({ seed: 3 });
      await sim.reset({ instruction });
      expect(sim.simTask().text).toBe('pick up the eggplant');
      expect(sim.simWorld()).toEqual(simScene(resolveTask('pick up the eggplant'), 3));
    }
    const other = new SimStationDriver({ seed: 3 });
    await other.reset({ instruction: 'stack the green block on the yellow block' });
    expect(other.simTask().text).toBe('stack the green block on the yellow block');
    expect(findObject(other.simWorld(), 'green_block')).toBeDefined();
  });

  it('refuses an instruction it cannot set up before the arm moves, naming it and what it can set up', async () => {
    const sim = new SimStationDriver({ seed: 0 });
    await sim.reset({ instruction: 'put the carrot on the plate' });
    await sim.execute([[0.01, 0, 0, 1]]);
    const before = { world: sim.simWorld(), step: (await sim.observe()).step };
    const err = await refusal(sim.reset({ instruction: 'fly to the moon' }));
    expect(err.code).toBe('bad_request');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('"fly to the moon"');
    expect(err.message).toContain('the episode names no scene');
    expect(err.message).toMatch(/Supported tasks: "put the carrot on the plate"/);
    // Nothing was laid out and the arm is where it was.
    expect(sim.simWorld()).toEqual(before.world);
    expect((await sim.observe()).step).toBe(before.step);
    expect(sim.simTask().text).toBe('put the carrot on the plate');
  });

  it('with a scene judges the instruction the simulator reads, not the scene', async () => {
    const sim = new SimStationDriver({ seed: 5 });
    await sim.reset({ instruction: 'pick up the carrot', scene: 'put the carrot on the plate' });
    expect(sim.simWorld()).toEqual(simScene(resolveTask('put the carrot on the plate'), 5));
    expect(sim.simTask().text).toBe('pick up the carrot');
    const outcome = sim.simTask().evaluate(sim.simHistory());
    expect(outcome.milestones.map((m) => m.name)).toEqual(['grasp the carrot', 'lift the carrot']);
    expect(planSimEpisode({ instruction: 'pick up the carrot', scene: 'put the carrot on the plate' }, 5).judgedAgainst).toBe('instruction');
  });

  it('with a scene judges an instruction the simulator cannot read against that scene', () => {
    const plan = planSimEpisode({ instruction: 'ramasse l’aubergine', scene: 'pick up the eggplant' }, 2);
    expect(plan).toMatchObject({ judgedAgainst: 'scene' });
    expect(plan.task.text).toBe('pick up the eggplant');
  });

  it('refuses an instruction that cannot be done in the given scene', () => {
    const scene = resolveTask('pick up the eggplant');
    const seed = Array.from({ length: 50 }, (_, s) => s).find((s) => findObject(simScene(scene, s), 'fish') === undefined);
    expect(seed).toBeDefined();
    let err: unknown;
    try {
      planSimEpisode({ instruction: 'pick up the fish', scene: 'pick up the eggplant' }, seed as number);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StationError);
    expect((err as StationError).code).toBe('bad_request');
    expect((err as StationError).message).toMatch(/^the instruction "pick up the fish" cannot be done in the scene "pick up the eggplant" \(seed \d+\): it needs the fish, which the scene does not have \(it has: .*eggplant/);
    // "The item above" a card the scene does not show.
    expect(() => planSimEpisode({ instruction: 'pick up the item above Pikachu', scene: 'pick up the eggplant' }, 0)).toThrow(/cannot be done in the scene/);
  });

  it('a restarted driver on the arm log keeps judging against the instruction', async () => {
    const stateFile = join(dir, 'arm.jsonl');
    const sim = new SimStationDriver({ seed: 1, stateFile });
    await sim.reset({ instruction: 'pick up the carrot', scene: 'put the carrot on the plate' });
    expect(JSON.parse(readFileSync(stateFile, 'utf8').split('\n')[0] ?? '')).toMatchObject({ reset: { scene: 'put the carrot on the plate', task: 'pick up the carrot', seed: 1 } });
    const restarted = new SimStationDriver({ seed: 1, stateFile });
    expect(restarted.simTask().text).toBe('pick up the carrot');
    expect(restarted.simWorld()).toEqual(sim.simWorld());
  });
});
