import { describe, expect, it } from 'vitest';
import { PolicyStage } from '../../data-schemas/prompts';
import { parseActionChunk } from '../../activities/robot/policy/parse';
import { createScriptedPolicy, scriptedSubtasks, subtaskReached } from '../../activities/robot/policy/scripted';
import { SimStationDriver, simSteps } from '../../activities/robot/station/sim';
import { resolveTask } from '../../activities/robot/sim/tasks';
import { createWorld, graspCandidate, graspPoint, getObject, restsOn, type EndEffector, type Vec3, type World } from '../../activities/robot/sim/world';
import { createOracleVerifier, judgeSubtask, readSubtasks, VerifierError, VerifierFailure, type VerifierFrame, type VerifierRequest } from '../../activities/robot/verifier';

const OPEN_EE: EndEffector = { pos: [0.3, 0, 0.16], rpy: [0, 0, 0], gripper: 1 };
/** A carrot and a plate (and a cup as a distractor), the arm high above the table. */
const scene = (ee: EndEffector = OPEN_EE): World =>
  createWorld(
    [
      { kind: 'carrot', x: 0.3, y: 0.08 },
      { kind: 'plate', x: 0.32, y: -0.1 },
      { kind: 'cup', x: 0.2, y: 0.15 },
    ],
    ee,
  );

/** Moves the fingertip by `d` meters with the gripper command `g`, as the simulator station does. */
const moveBy = (w: World, d: Vec3, g: number): World => simSteps(w, [d[0], d[1], d[2], g]).at(-1) ?? w;
const moveTo = (w: World, p: Vec3, g: number): World => moveBy(w, [p[0] - w.ee.pos[0], p[1] - w.ee.pos[1], p[2] - w.ee.pos[2]], g);
const carrotPoint = (w: World): Vec3 => graspPoint(getObject(w, 'carrot'));
/** The arm at the carrot's grasp point, gripper open. */
const atCarrot = (): World => moveTo(scene(), carrotPoint(scene()), 1);
/** The carrot grasped where it lies. */
const holdingCarrot = (): World => moveBy(atCarrot(), [0, 0, 0], 0);

const PLAN = ['Move to carrot', 'Grasp carrot', 'Move to plate', 'Release carrot', 'Move away from plate'];
const TASK = resolveTask('put the carrot on the plate');

const judge = (world: World, index: number, subtasks: readonly string[] = PLAN) => judgeSubtask(subtasks, index, world, TASK);

describe('oracle: reading subtask texts', () => {
  it("reads the scripted policy's wording back into the scripted plan's goals", () => {
    for (const text of ['put the carrot on the plate', 'pick up the eggplant', 'put the eggplant in the pan then lift the fish', 'stack the green block on the yellow block']) {
      const plan = scriptedSubtasks(resolveTask(text));
      const read = readSubtasks(plan.map((g) => g.text));
      expect(read).toEqual(plan.map((goal) => ({ ok: true, goal })));
    }
  });

  it('accepts simple synonyms, with what the plan holds deciding what "Move to" means', () => {
    const read = readSubtasks(['Go to the carrot.', 'Grab it', 'Move the carrot to the plate', 'Open the gripper', 'Back away', 'Approach the orange carrot', 'Pick up the carrot', 'Move over the plate', 'Put the carrot on the plate']);
    expect(read.map((r) => (r.ok ? r.goal : r.problem))).toEqual([
      { kind: 'approach', text: 'Go to the carrot.', object: 'carrot' },
      { kind: 'grasp', text: 'Grab it', object: 'carrot' },
      { kind: 'carry', text: 'Move the carrot to the plate', object: 'carrot', target: 'plate' },
      { kind: 'release', text: 'Open the gripper', object: 'carrot', target: 'plate' },
      { kind: 'retreat', text: 'Back away', from: 'plate' },
      { kind: 'approach', text: 'Approach the orange carrot', object: 'carrot' },
      { kind: 'lift', text: 'Pick up the carrot', object: 'carrot' },
      { kind: 'carry', text: 'Move over the plate', object: 'carrot', target: 'plate' },
      { kind: 'release', text: 'Put the carrot on the plate', object: 'carrot', target: 'plate' },
    ]);
    // Aliases of other languages and synonyms map to the same object.
    expect(readSubtasks(['Move to gajar', 'Grasp aubergine'])).toMatchObject([{ ok: true, goal: { object: 'carrot' } }, { ok: true, goal: { object: 'eggplant' } }]);
  });

  it('resolves "the item above <picture>" in the scene', () => {
    const world = createWorld([
      { kind: 'picture_card', id: 'card-ash-ketchum', label: 'Ash Ketchum', x: 0.4, y: 0 },
      { kind: 'carrot', x: 0.29, y: 0.01 },
      { kind: 'fish', x: 0.25, y: 0.15 },
    ]);
    expect(readSubtasks(['Move to the item above Ash Ketchum', 'Grasp it'], world)).toEqual([
      { ok: true, goal: { kind: 'approach', text: 'Move to the item above Ash Ketchum', object: 'carrot' } },
      { ok: true, goal: { kind: 'grasp', text: 'Grasp it', object: 'carrot' } },
    ]);
    expect(readSubtasks(['Move to the item above Pikachu'], world)).toEqual([{ ok: false, problem: 'cannot interpret the subtask "Move to the item above Pikachu": no picture card "Pikachu" in the scene' }]);
    expect(readSubtasks(['Move to the item above Ash Ketchum'])[0]).toMatchObject({ ok: false, problem: expect.stringContaining('can only be resolved in a scene') as unknown });
  });

  it('says exactly what it cannot read', () => {
    const [dance, widget, nothing] = readSubtasks(['Dance with the carrot', 'Move to the widget', 'Close the gripper']);
    expect(dance).toEqual({ ok: false, problem: expect.stringMatching(/^cannot interpret the subtask "Dance with the carrot": it is none of the forms "Move to X"/) as unknown });
    expect(widget).toEqual({ ok: false, problem: expect.stringContaining('"widget" is no object the simulator knows') as unknown });
    expect(nothing).toEqual({ ok: false, problem: expect.stringContaining('without naming an object') as unknown });
  });
});

describe('oracle: judging the true scene', () => {
  it('"Move to X" proceeds only at the grasp point, open and empty, with a reason in centimeters otherwise', () => {
    const hover = moveBy(atCarrot(), [0, 0, 0.07], 1);
    expect(judge(hover, 0)).toEqual({ decision: 'retry', reason: "the gripper is 7.0 cm from the carrot's grasp point (still 7.0 cm down); aligned for a grasp means within 0.5 cm" });
    const beside = moveBy(atCarrot(), [0.02, -0.01, 0], 1);
    expect(judge(beside, 0).reason).toContain('(still 2.0 cm backward, 1.0 cm left)');
    expect(judge(atCarrot(), 0)).toEqual({ decision: 'proceed', reason: "the open gripper is 0.0 cm from the carrot's grasp point, aligned for the grasp" });
    const closed = moveBy(moveBy(atCarrot(), [0, 0, 0.04], 0), [0, 0, -0.04], 0);
    expect(closed.held).toBeNull();
    expect(judge(closed, 0)).toEqual({ decision: 'retry', reason: 'the gripper is closed (opening 0.00); it must be open to grasp the carrot' });
  });

  it('is strict: near enough for the simulator to grasp is not aligned', () => {
    const above = moveBy(atCarrot(), [0, 0, 0.015], 1);
    // A lax verifier would accept this: closing here does take the carrot...
    expect(graspCandidate(above, above.ee.pos)?.id).toBe('carrot');
    // ...but "Move to carrot" before "Grasp carrot" means aligned for the grasp, within 5 mm.
    expect(judge(above, 0)).toMatchObject({ decision: 'retry', reason: expect.stringContaining("1.5 cm from the carrot's grasp point") as unknown });
    // Within 5 mm it proceeds, and the grasp that follows does take the carrot.
    const near = moveBy(atCarrot(), [0.002, 0, 0.003], 1);
    expect(judge(near, 0).decision).toBe('proceed');
    expect(moveBy(near, [0, 0, 0], 0).held?.id).toBe('carrot');
  });

  it('is strict: at the grasp point of a covered object, "Move to X" before "Grasp X" is not done', () => {
    const blocks = createWorld([{ kind: 'yellow_block', x: 0.3, y: 0 }], OPEN_EE);
    const yellow = getObject(blocks, 'yellow_block');
    const stacked: World = { ...blocks, objects: [...blocks.objects, { id: 'green_block', kind: 'green_block', pos: [0.3, 0, 0.04], yaw: 0, support: { relation: 'on', target: 'yellow_block' } }] };
    const there = moveTo(stacked, graspPoint(yellow), 1);
    const plan = ['Move to yellow block', 'Grasp yellow block'];
    expect(subtaskReached({ kind: 'approach', text: plan[0] ?? '', object: 'yellow_block' }, there)).toBe(true);
    expect(judgeSubtask(plan, 0, there)).toEqual({
      decision: 'retry',
      reason: "the gripper is at the yellow block's grasp point, but closing it there would grasp nothing (something rests on the yellow block)",
    });
    // Without a grasp to follow, being there is all "Move to" asks.
    expect(judgeSubtask(['Move to yellow block'], 0, there).decision).toBe('proceed');
  });

  it('judges grasp, carry, lift, release and move-away by the true state', () => {
    expect(judge(holdingCarrot(), 1)).toEqual({ decision: 'proceed', reason: 'the gripper holds the carrot' });
    const missed = moveBy(moveBy(atCarrot(), [0.03, 0, 0], 1), [0, 0, 0], 0);
    expect(judge(missed, 1)).toEqual({ decision: 'retry', reason: "the gripper closed on nothing; the carrot's grasp point is 3.0 cm away" });

    const carrying = moveBy(holdingCarrot(), [0, 0, 0.1], 0);
    expect(judge(carrying, 2).decision).toBe('retry');
    expect(judge(carrying, 2).reason).toMatch(/^the carrot is held but the gripper is \d+\.\d cm from its release point over the plate \(still .*right.*\)/);
    // The scripted policy's carry, chunk after chunk, ends at the release point.
    const policy = createScriptedPolicy({ seed: 0, noise: { actionStdMeters: 0, formatErrorRate: 0 } });
    let w = carrying;
    for (let c = 0; c < 10 && judge(w, 2).decision === 'retry'; c++) {
      const chunk = parseActionChunk(policy.answer(PolicyStage.action, { task: TASK, world: w, subtaskIndex: 2 }));
      if (!chunk.ok) throw new Error(chunk.error);
      for (const a of chunk.value) w = simSteps(w, a).at(-1) ?? w;
    }
    expect(judge(w, 2)).toMatchObject({ decision: 'proceed', reason: expect.stringMatching(/^the carrot is held 0\.\d cm from its release point over the plate$/) as unknown });

    const released = moveBy(w, [0, 0, 0], 1);
    expect(restsOn(released, 'carrot', 'plate')).toBe(true);
    expect(judge(released, 3)).toEqual({ decision: 'proceed', reason: 'the carrot was released: it rests on the plate' });
    const droppedEarly = moveBy(carrying, [0, 0, 0], 1);
    expect(judge(droppedEarly, 3)).toEqual({ decision: 'retry', reason: 'the carrot is not on the plate: it rests on the table' });
    expect(judge(droppedEarly, 2)).toEqual({ decision: 'retry', reason: 'the carrot is not in the gripper: it rests on the table' });

    expect(judge(released, 4)).toMatchObject({ decision: 'retry', reason: expect.stringMatching(/^the gripper is at z = \d\.\d cm, below the clearance height of 12\.0 cm above the plate$/) as unknown });
    expect(judge(moveBy(released, [0, 0, 0.1], 1), 4).decision).toBe('proceed');

    const lift = ['Move to carrot', 'Grasp carrot', 'Lift carrot'];
    expect(judge(holdingCarrot(), 2, lift)).toEqual({ decision: 'retry', reason: 'the carrot is held but the gripper is at z = 1.1 cm, below the lift height of 14.0 cm' });
    expect(judge(moveBy(holdingCarrot(), [0, 0, 0.14], 0), 2, lift).decision).toBe('proceed');
  });

  it('retries, saying why, when the subtask cannot be read or names what is not in the scene', () => {
    expect(judge(atCarrot(), 0, ['Wiggle a bit'])).toEqual({ decision: 'retry', reason: expect.stringContaining('cannot interpret the subtask "Wiggle a bit"') as unknown });
    expect(judge(atCarrot(), 0, ['Move to fish', 'Grasp fish'])).toEqual({
      decision: 'retry',
      reason: 'the subtask "Move to fish" names the fish, which is not in the scene (it has: carrot, plate, cup); the task "put the carrot on the plate" involves the carrot and the plate',
    });
  });
});

describe('oracle verifier', () => {
  const frame = (w: World): VerifierFrame => ({ image: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]), mimeType: 'image/jpeg', state: [...w.ee.pos, 0, 0, 0, w.ee.gripper] });

  it('answers with the verdict, its name and no prompt', async () => {
    const world = atCarrot();
    const verifier = createOracleVerifier({ world: () => world, task: () => TASK });
    const answer = await verifier.verify({ instruction: TASK.text, subtasks: PLAN, subtaskIndex: 0, before: frame(scene()), after: frame(world) });
    expect(answer).toMatchObject({ verdict: { decision: 'proceed' }, verifier: 'oracle', promptVersion: null, raw: null });
    expect(answer.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('rejects a subtask index outside the list as a non-retryable bad request', async () => {
    const verifier = createOracleVerifier({ world: scene, task: () => TASK });
    const req: VerifierRequest = { instruction: TASK.text, subtasks: PLAN, subtaskIndex: PLAN.length, before: frame(scene()), after: frame(scene()) };
    const err = await verifier.verify(req).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VerifierError);
    expect(err).toMatchObject({ type: VerifierFailure.BadRequest, nonRetryable: true, message: expect.stringContaining('subtaskIndex must be an integer in [0, 4], got 5') as unknown });
  });

  it('drives a simulated episode: proceeds exactly when the true plan step is reached, and the task succeeds', async () => {
    const task = 'put the eggplant in the pan then lift the fish';
    const station = new SimStationDriver({ seed: 3 });
    let before = await station.reset({ instruction: task });
    const simTask = station.simTask();
    const plan = scriptedSubtasks(simTask);
    const subtasks = plan.map((g) => g.text);
    const policy = createScriptedPolicy({ seed: 3, noise: { actionStdMeters: 0.002, formatErrorRate: 0 } });
    const verifier = createOracleVerifier({ world: () => station.simWorld(), task: () => simTask });
    const retryReasons: string[] = [];
    for (let i = 0; i < plan.length; i++) {
      let proceeded = false;
      for (let c = 0; c < 12 && !proceeded; c++) {
        const chunk = parseActionChunk(policy.answer(PolicyStage.action, { task: simTask, world: station.simWorld(), subtaskIndex: i }));
        if (!chunk.ok) throw new Error(chunk.error);
        const { observation: after } = await station.execute(chunk.value);
        const { verdict } = await verifier.verify({ instruction: task, subtasks, subtaskIndex: i, before, after });
        expect(verdict.decision).toBe(subtaskReached(plan[i]!, station.simWorld()) ? 'proceed' : 'retry');
        if (verdict.decision === 'retry') retryReasons.push(verdict.reason);
        proceeded = verdict.decision === 'proceed';
        before = after;
      }
      expect(proceeded, `subtask ${i} "${subtasks[i]}"`).toBe(true);
    }
    expect(simTask.evaluate(station.simHistory()).success).toBe(true);
    // Chunks of at most 10 small steps leave long moves unfinished: each retry says by how much.
    expect(retryReasons.length).toBeGreaterThan(0);
    for (const r of retryReasons) expect(r).toMatch(/\d\.\d cm/);
    await station.close();
  });
});
