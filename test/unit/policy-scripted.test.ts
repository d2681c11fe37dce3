import { describe, expect, it } from 'vitest';
import { PolicyStage, type PolicyStage as Stage } from '../../data-schemas/prompts';
import type { ActionChunk } from '../../data-schemas/d-lan';
import { parseActionChunk, parseMotionPlan, parseStage, parseSubtasks } from '../../activities/robot/policy/parse';
import {
  createScriptedPolicy,
  MALFORMED_KINDS,
  scriptedSubtasks,
  subtaskReached,
  type ScriptedPolicy,
  type ScriptedPolicyNoise,
} from '../../activities/robot/policy/scripted';
import { findSafetyViolation } from '../../activities/robot/station/safety';
import { SimStationDriver } from '../../activities/robot/station/sim';
import { state7 } from '../../activities/robot/sim/world';
import { resolveTask, SUPPORTED_TASKS } from '../../activities/robot/sim/tasks';

const NO_NOISE: ScriptedPolicyNoise = { actionStdMeters: 0, formatErrorRate: 0 };
/** Chunks allowed per subtask before a test gives up. */
const MAX_CHUNKS = 12;

interface EpisodeStats {
  success: boolean;
  chunks: ActionChunk[];
  answers: number;
  parseFailures: number;
  unsafe: string[];
  subtasks: string[];
}

/**
 * The episode loop with the ground-truth oracle as verifier: subtasks once, then per subtask a
 * motion plan and an action chunk until the subtask is reached; malformed answers are asked again.
 */
async function runEpisode(task: string, seed: number, policy: ScriptedPolicy, maxAsks = 400): Promise<EpisodeStats> {
  const station = new SimStationDriver({ seed });
  await station.reset({ instruction: task });
  const simTask = station.simTask();
  const stats: EpisodeStats = { success: false, chunks: [], answers: 0, parseFailures: 0, unsafe: [], subtasks: [] };
  const ask = <S extends Stage>(stage: S, subtaskIndex: number): ReturnType<typeof parseStage<S>> | undefined => {
    for (;;) {
      if (stats.answers >= maxAsks) return undefined;
      stats.answers++;
      const r = parseStage(stage, policy.answer(stage, { task: simTask, world: station.simWorld(), subtaskIndex }));
      if (r.ok) return r;
      stats.parseFailures++;
    }
  };
  const subtasks = ask(PolicyStage.subtasks, 0);
  if (!subtasks?.ok) return stats;
  stats.subtasks = subtasks.value;
  const plan = scriptedSubtasks(simTask);
  for (let i = 0; i < plan.length; i++) {
    const goal = plan[i];
    if (!goal) break;
    for (let c = 0; c < MAX_CHUNKS && !subtaskReached(goal, station.simWorld()); c++) {
      if (!ask(PolicyStage.motionPlan, i)?.ok) return stats;
      const chunk = ask(PolicyStage.action, i);
      if (!chunk?.ok) return stats;
      stats.chunks.push(chunk.value);
      const violation = findSafetyViolation(chunk.value, state7(station.simWorld()), station.limits);
      if (violation) {
        stats.unsafe.push(violation.message);
        return stats;
      }
      await station.execute(chunk.value);
    }
  }
  stats.success = simTask.evaluate(station.simHistory()).success;
  await station.close();
  return stats;
}

describe('scripted policy plan', () => {
  it('words subtasks like the heuristic labeler, first "Move to"', () => {
    expect(scriptedSubtasks(resolveTask('put the carrot on the plate')).map((s) => s.text)).toEqual([
      'Move to carrot',
      'Grasp carrot',
      'Move to plate',
      'Release carrot',
      'Move away from plate',
    ]);
    expect(scriptedSubtasks(resolveTask('pick up the eggplant')).map((s) => s.text)).toEqual(['Move to eggplant', 'Grasp eggplant', 'Lift eggplant']);
    expect(scriptedSubtasks(resolveTask('put the eggplant in the pan then lift the fish')).map((s) => s.text)).toEqual([
      'Move to eggplant',
      'Grasp eggplant',
      'Move to pan',
      'Release eggplant',
      'Move to fish',
      'Grasp fish',
      'Lift fish',
    ]);
  });

  it('answers all three stages in the trained formats, parsed by the same parser', async () => {
    const task = 'put the carrot on the plate';
    const station = new SimStationDriver({ seed: 1 });
    await station.reset({ instruction: task });
    const policy = createScriptedPolicy({ seed: 1, noise: NO_NOISE });
    const ctx = { task: station.simTask(), world: station.simWorld(), subtaskIndex: 0 };
    const subtasks = policy.answer(PolicyStage.subtasks, ctx);
    expect(subtasks).toBe('1. Move to carrot\n2. Grasp carrot\n3. Move to plate\n4. Release carrot\n5. Move away from plate');
    expect(parseSubtasks(subtasks).ok).toBe(true);
    const plan = policy.answer(PolicyStage.motionPlan, ctx);
    expect(plan).toMatch(/^Move primarily (down|forward|backward|left|right) \(about \d+ cm\).*, keeping the gripper open\.$/);
    expect(parseMotionPlan(plan).ok).toBe(true);
    const text = policy.answer(PolicyStage.action, ctx);
    expect(text).toMatch(/^\[\[-?\d\.\d{3}, -?\d\.\d{3}, -?\d\.\d{3}, 1\](, \[-?\d\.\d{3}, -?\d\.\d{3}, -?\d\.\d{3}, 1\])*\]$/);
    const chunk = parseActionChunk(text);
    if (!chunk.ok) throw new Error(chunk.error);
    expect(chunk.value).toHaveLength(10);
    for (const [dx, dy, dz] of chunk.value) {
      const norm = Math.hypot(dx, dy, dz);
      expect(norm).toBeLessThanOrEqual(0.0155);
      expect(norm).toBeGreaterThan(0.005);
    }
    // The grasp is its own zero-motion action.
    expect(policy.answer(PolicyStage.action, { ...ctx, subtaskIndex: 1 })).toBe('[[0.000, 0.000, 0.000, 0]]');
    expect(policy.answer(PolicyStage.motionPlan, { ...ctx, subtaskIndex: 1 })).toBe('Close the gripper and hold position.');
    await station.close();
  });

  it('is deterministic per seed and differs between seeds', async () => {
    const task = 'pick up the eggplant';
    const station = new SimStationDriver({ seed: 2 });
    await station.reset({ instruction: task });
    const ctx = { task: station.simTask(), world: station.simWorld(), subtaskIndex: 0 };
    const noise = { actionStdMeters: 0.003, formatErrorRate: 0.3, wrongSubtaskRate: 0.3 };
    const answers = (seed: number): string[] => {
      const p = createScriptedPolicy({ seed, noise });
      return Array.from({ length: 30 }, (_, i) => p.answer([PolicyStage.subtasks, PolicyStage.motionPlan, PolicyStage.action][i % 3] as Stage, ctx));
    };
    expect(answers(7)).toEqual(answers(7));
    expect(answers(8)).not.toEqual(answers(7));
    await station.close();
  });

  it('names a distractor instead of the task object at wrongSubtaskRate, still well-formed', async () => {
    const task = 'put the carrot on the plate';
    const station = new SimStationDriver({ seed: 4 });
    await station.reset({ instruction: task });
    const ctx = { task: station.simTask(), world: station.simWorld(), subtaskIndex: 0 };
    const policy = createScriptedPolicy({ seed: 4, noise: { ...NO_NOISE, wrongSubtaskRate: 1 } });
    const r = parseSubtasks(policy.answer(PolicyStage.subtasks, ctx));
    if (!r.ok) throw new Error(r.error);
    expect(r.value[0]).toMatch(/^Move to /);
    expect(r.value[0]).not.toBe('Move to carrot');
    expect(r.value.join('\n')).not.toContain('carrot');
    await station.close();
  });

  it('rejects bad options', () => {
    expect(() => createScriptedPolicy({ seed: -1, noise: NO_NOISE })).toThrow(/seed/);
    expect(() => createScriptedPolicy({ seed: 0, noise: { actionStdMeters: 0, formatErrorRate: 1.5 } })).toThrow(/formatErrorRate/);
    expect(() => createScriptedPolicy({ seed: 0, noise: { actionStdMeters: -1, formatErrorRate: 0 } })).toThrow(/actionStdMeters/);
    expect(() => createScriptedPolicy({ seed: 0, noise: NO_NOISE, stepMeters: 0.06 })).toThrow(/stepMeters/);
  });
});

describe('scripted policy drives the simulator', () => {
  // The brief's two tasks and the rest of the simulator's supported suite.
  for (const task of SUPPORTED_TASKS) {
    it(`succeeds at "${task}" without noise (seeds 0-2)`, async () => {
      for (const seed of [0, 1, 2]) {
        const stats = await runEpisode(task, seed, createScriptedPolicy({ seed, noise: NO_NOISE }));
        expect(stats.parseFailures).toBe(0);
        expect(stats.unsafe).toEqual([]);
        expect(stats.subtasks[0]).toMatch(/^Move to /);
        expect(stats.success, `seed ${seed}`).toBe(true);
      }
    });
  }

  it('with 0.5 format errors: about half the answers fail to parse, exactly the malformed ones, and every parsed chunk is safe', async () => {
    const task = 'put the carrot on the plate';
    const station = new SimStationDriver({ seed: 5 });
    await station.reset({ instruction: task });
    const policy = createScriptedPolicy({ seed: 5, noise: { actionStdMeters: 0.004, formatErrorRate: 0.5 } });
    const stages = [PolicyStage.subtasks, PolicyStage.motionPlan, PolicyStage.action] as const;
    const kinds = new Set<string>();
    let failures = 0;
    const n = 300;
    for (let i = 0; i < n; i++) {
      const stage = stages[i % 3] as Stage;
      const { text, malformed } = policy.respond(stage, { task: station.simTask(), world: station.simWorld(), subtaskIndex: 0 });
      const r = parseStage(stage, text);
      expect(r.ok, `${stage} ${malformed ?? 'well-formed'}: ${text}`).toBe(malformed === null);
      if (malformed) kinds.add(`${stage}:${malformed}`);
      if (!r.ok) failures++;
    }
    expect(failures).toBeGreaterThanOrEqual(120);
    expect(failures).toBeLessThanOrEqual(180);
    expect([...kinds].sort()).toEqual(Object.entries(MALFORMED_KINDS).flatMap(([stage, ks]) => ks.map((k) => `${stage}:${k}`)).sort());
    await station.close();

    // A whole noisy episode: malformed answers re-asked, every parsed chunk within the safety limits.
    const stats = await runEpisode(task, 6, createScriptedPolicy({ seed: 6, noise: { actionStdMeters: 0.004, formatErrorRate: 0.5 } }), 2000);
    expect(stats.unsafe).toEqual([]);
    expect(stats.chunks.length).toBeGreaterThan(5);
    expect(stats.parseFailures / stats.answers).toBeGreaterThan(0.35);
    expect(stats.parseFailures / stats.answers).toBeLessThan(0.65);
  });

  it('keeps large noise inside the step limit and the workspace', async () => {
    const stats = await runEpisode('pick up the eggplant', 3, createScriptedPolicy({ seed: 3, noise: { actionStdMeters: 0.03, formatErrorRate: 0 } }));
    expect(stats.unsafe).toEqual([]);
    expect(stats.chunks.length).toBeGreaterThan(3);
  });
});
