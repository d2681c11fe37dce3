import { describe, expect, it } from 'vitest';
import { PolicyStage } from '../../data-schemas/prompts';
import { SuiteTaskId } from '../../data-schemas/robot';
import { parseActionChunk, parseMotionPlan, parseSubtasks } from '../../activities/robot/policy/parse';
import { createScriptedPolicy, scriptedSubtasks, subtaskReached } from '../../activities/robot/policy/scripted';
import { namedObjects, planHit } from '../../activities/robot/campaign/plan-hit';
import { FIGURE_5_SUITE, suiteInstruction, suiteTask } from '../../activities/robot/campaign/suite';
import { SimStationDriver } from '../../activities/robot/station/sim';
import {
  ABOVE_CARD,
  projectPoint,
  createRng,
  createWorld,
  defaultMaxSteps,
  demonstrate,
  episodeRng,
  findCard,
  getObject,
  graspPoint,
  groundSpec,
  instructionIn,
  isGraspable,
  itemAbove,
  foldInstruction,
  OBJECT_KINDS,
  objectsAbove,
  parseTask,
  PICTURE_LABELS,
  renderSvg,
  resolveTask,
  simulateEpisodes,
  step,
  SUPPORTED_TASKS,
  UnknownTaskError,
  WORKSPACE,
  type ObjectKind,
  type PendingTrajectory,
  type Task,
  type Vec3,
  type World,
} from '../../activities/robot/sim';
import { goTo, move } from '../helpers/sim';

const GRASPABLE = OBJECT_KINDS.filter(isGraspable);
const ITEM_ABOVE = 'pick up the item above Ash Ketchum';


/** The scene a trial of `task` with this seed starts from (as the sim station lays it out). */
function scene(task: Task, seed: number): World {
  const rng = episodeRng(seed, task.slug, 0);
  task.phrase(rng);
  return task.sampleScene(rng);
}

describe('the Figure-5 suite', () => {
  it('has the paper\'s five rows with docs/method.md\'s success rates and trial counts', () => {
    expect(FIGURE_5_SUITE.map((t) => t.id)).toEqual(SuiteTaskId.options);
    expect(FIGURE_5_SUITE.map((t) => [t.name, t.paper.openvla, t.paper.ecot, t.paper.vlm2vlaAt, t.paper.vlm2vla, t.paperTrials])).toEqual([
      ['Pick up (in-distribution)', 78, 52, 57, 62, 30],
      ['Pick, place and lift (sequential)', 77, 58, 43, 62, 30],
      ['Pick and place (long horizon)', 49, 33, 34, 51, 30],
      ['Pick up, multilingual instruction', 1, 5, 28, 53, 90],
      ['Pick up "the item above Ash Ketchum"', 0, 0, 30, 60, 30],
    ]);
    expect(FIGURE_5_SUITE.filter((t) => !t.inDistribution).map((t) => t.id)).toEqual(['multilingual', 'item_above']);
    expect(suiteTask('item_above').scene).toBe(ITEM_ABOVE);
    expect(() => suiteTask('juggling' as SuiteTaskId)).toThrow(/no Figure-5 task/);
  });

  it('gives every trial an instruction that means the scene\'s task; multilingual cycles es, zh, hi', () => {
    for (const t of FIGURE_5_SUITE) {
      const task = resolveTask(t.scene);
      expect(task.text).toBe(t.scene);
      for (const i of t.instructions) expect(resolveTask(i.text).slug, i.text).toBe(task.slug);
    }
    const multi = suiteTask('multilingual');
    expect([0, 1, 2, 3, 89].map((i) => suiteInstruction(multi, i))).toEqual([
      { lang: 'es', text: 'recoge la berenjena' },
      { lang: 'zh', text: '拿起茄子' },
      { lang: 'hi', text: 'बैंगन उठाओ' },
      { lang: 'es', text: 'recoge la berenjena' },
      { lang: 'hi', text: 'बैंगन उठाओ' },
    ]);
    expect(suiteInstruction(suiteTask('pick_up'), 7)).toEqual({ lang: 'en', text: 'pick up the eggplant' });
    expect(() => suiteInstruction(multi, -1)).toThrow(RangeError);
  });
});

describe('multilingual instructions', () => {
  it('parse to the same English task as "pick up <object>", for every graspable object', () => {
    const rng = createRng(11);
    for (const kind of GRASPABLE) {
      const task = resolveTask(`pick up the ${kind.replace('_', ' ')}`);
      for (const lang of ['es', 'zh', 'hi'] as const) {
        const wordings = [instructionIn(task, lang), ...Array.from({ length: 6 }, () => instructionIn(task, lang, rng))];
        for (const w of wordings) {
          expect(parseTask(w), `${lang}: ${w}`).toEqual({ steps: [{ kind: 'pick_up', object: kind }] });
          expect(resolveTask(w).text).toBe(task.text); // the task (and its phrase) stay English
        }
      }
    }
  });

  it('understands the usual wordings, punctuation and spacing of each script', () => {
    const eggplant = { steps: [{ kind: 'pick_up', object: 'eggplant' }] };
    for (const text of ['recoge la berenjena', 'Recoge la berenjena, por favor.', '¡Levanta la BERENJENA!', 'agarrar berenjena', '拿起茄子', '请把茄子拿起来。', '拿起 茄子！', '捡起那个茄子', 'बैंगन उठाओ', 'कृपया बैंगन को उठाइए।', 'बैंगन उठा लो']) {
      expect(parseTask(text), text).toEqual(eggplant);
    }
    expect(parseTask('कृपया हरे ब्लॉक को उठाइए।')).toEqual({ steps: [{ kind: 'pick_up', object: 'green_block' }] });
    expect(parseTask('toma el pez')).toEqual({ steps: [{ kind: 'pick_up', object: 'fish' }] });
    // A nukta letter typed precomposed (U+095C) or as two code points reads the same.
    expect(parseTask('मछली पकड़ो')).toEqual(parseTask('मछली पकड\u093Cो'));
    expect(parseTask('मछली पकड़ो')).toEqual({ steps: [{ kind: 'pick_up', object: 'fish' }] });
    expect(foldInstruction('  ¿Recoge la Sartén?  ')).toBe('recoge la sarten');
    expect(foldInstruction('请 拿起 茄子。')).toBe('请拿起茄子');
    expect(foldInstruction('बैंगन उठाओ।')).toBe('बैंगन उठाओ');
  });

  it('rejects unknown words and objects that cannot be grasped, and only translates pick-ups', () => {
    expect(() => parseTask("recoge el dragón")).toThrow(/unknown object "dragon"/);
    expect(() => parseTask('拿起龙')).toThrow(UnknownTaskError);
    expect(() => parseTask('recoge la sartén')).toThrow(/the pan cannot be grasped/);
    expect(() => parseTask('टोकरी उठाओ')).toThrow(/the basket cannot be grasped/);
    expect(() => instructionIn(resolveTask('put the carrot on the plate'), 'es')).toThrow(/only single pick-up tasks/);
    expect(instructionIn(resolveTask('put the carrot on the plate'), 'en')).toBe('put the carrot on the plate');
  });
});

describe('"pick up the item above <picture>"', () => {
  it('parses any wording of it, and maps its own wordings back', () => {
    expect(parseTask(ITEM_ABOVE)).toEqual({ steps: [{ kind: 'pick_up_above', label: 'Ash Ketchum' }] });
    expect(parseTask('Grab the object above the picture of pikachu.')).toEqual({ steps: [{ kind: 'pick_up_above', label: 'Pikachu' }] });
    const task = resolveTask(ITEM_ABOVE);
    expect(task.text).toBe(ITEM_ABOVE);
    expect(task.slug).toBe('pick-up-item-above-ash-ketchum');
    const rng = createRng(3);
    for (let i = 0; i < 30; i++) expect(resolveTask(task.phrase(rng)).slug).toBe(task.slug);
    expect(() => parseTask('pick up the item above Darth Vader')).toThrow(/no picture card shows "darth vader"/);
    expect(() => parseTask('pick up the item above Pikachu then lift the fish')).toThrow(/a task on its own/);
    expect(() => parseTask('pick up the picture card')).toThrow(/cannot be grasped/);
  });

  it('"above" is further from the main camera (toward the robot, -x), i.e. higher in image_0', () => {
    const world = createWorld([
      { kind: 'picture_card', id: 'card-pikachu', label: 'Pikachu', x: 0.36, y: 0.02 },
      { kind: 'carrot', x: 0.25, y: 0.03 },
      { kind: 'eggplant', x: 0.47, y: 0.02 }, // below the card in the image
      { kind: 'cup', x: 0.27, y: 0.14 }, // above, but off to the side
    ]);
    expect(itemAbove(world, 'Pikachu')).toBe('carrot');
    expect(objectsAbove(world, 'Pikachu').map((o) => o.id)).toEqual(['carrot']);
    // Project with the main camera: the carrot is higher in the image (smaller row) than the card.
    const row = (p: Vec3): number => projectPoint(world, 'image_0', p)?.[1] ?? NaN;
    const at = (id: string): Vec3 => getObject(world, id).pos;
    expect(row(at('carrot'))).toBeLessThan(row(at('card-pikachu')));
    expect(row(at('eggplant'))).toBeGreaterThan(row(at('card-pikachu')));
    expect(() => itemAbove(world, 'Taylor Swift')).toThrow(/no picture card "Taylor Swift"/);
    expect(() => itemAbove(createWorld([{ kind: 'picture_card', id: 'c', label: 'Pikachu', x: 0.36, y: 0 }]), 'Pikachu')).toThrow(/nothing graspable/);
  });

  it('samples valid, deterministic scenes with exactly one item above the card, other cards and distractors', () => {
    const task = resolveTask(ITEM_ABOVE);
    const items = new Set<ObjectKind>();
    for (let seed = 0; seed < 25; seed++) {
      const w = scene(task, seed);
      expect(scene(task, seed)).toEqual(w);
      expectValidScene(w);
      const card = findCard(w, 'Ash Ketchum');
      expect(card?.id).toBe('card-ash-ketchum');
      const above = objectsAbove(w, 'Ash Ketchum');
      expect(above, `seed ${seed}`).toHaveLength(1);
      items.add(above[0]!.kind);
      const cards = w.objects.filter((o) => o.kind === 'picture_card');
      expect(cards.length).toBeGreaterThanOrEqual(2);
      expect(new Set(cards.map((c) => c.label)).size).toBe(cards.length);
      for (const c of cards) expect(PICTURE_LABELS).toContain(c.label);
      // More than the card and its item: other cards' items or distractors.
      expect(w.objects.filter((o) => o.kind !== 'picture_card').length).toBeGreaterThanOrEqual(2);
      expect(groundSpec(task.spec, w)).toEqual({ steps: [{ kind: 'pick_up', object: above[0]!.kind }] });
      // Items sit clearly inside the region, not at its edge.
      const behind = card!.pos[0] - above[0]!.pos[0];
      expect(behind).toBeGreaterThan(ABOVE_CARD.near + 0.05);
      expect(behind).toBeLessThan(ABOVE_CARD.far - 0.03);
    }
    expect(scene(task, 1)).not.toEqual(scene(task, 2));
    expect(items.size).toBeGreaterThanOrEqual(4); // the item varies: the name cannot be guessed
  });

  it('draws every card\'s label into the frame', () => {
    const w = scene(resolveTask(ITEM_ABOVE), 0);
    const svg = renderSvg(w, 'image_0');
    for (const c of w.objects.filter((o) => o.kind === 'picture_card')) expect(svg).toContain(`>${c.label}</text>`);
    expect(svg).toContain('>Ash Ketchum</text>');
    expect(renderSvg(w, 'image_0')).toBe(svg);
    // The existing scenes have no text.
    expect(renderSvg(scene(resolveTask('pick up the eggplant'), 0), 'image_0')).not.toContain('<text');
  });

  it('counts only the item above the card: lifting another card\'s item is no success', () => {
    const task = resolveTask(ITEM_ABOVE);
    const w0 = createWorld([
      { kind: 'picture_card', id: 'card-ash-ketchum', label: 'Ash Ketchum', x: 0.38, y: -0.08 },
      { kind: 'spoon', x: 0.27, y: -0.08 },
      { kind: 'picture_card', id: 'card-pikachu', label: 'Pikachu', x: 0.38, y: 0.1 },
      { kind: 'carrot', x: 0.27, y: 0.1 },
    ]);
    const lift = (kind: ObjectKind): World[] => {
      let w = goTo(w0, graspPoint(getObject(w0, kind)), 1);
      w = step(w, move([0, 0, 0], 0));
      return [w0, w, goTo(w, [w.ee.pos[0], w.ee.pos[1], 0.14], 0)];
    };
    const wrong = task.evaluate(lift('carrot'));
    expect(wrong.success).toBe(false);
    expect(wrong.milestones).toEqual([
      { name: 'grasp the spoon', achieved: false },
      { name: 'lift the spoon', achieved: false },
    ]);
    const right = task.evaluate(lift('spoon'));
    expect(right.success).toBe(true);
    expect(right.score).toBe(2);
  });
});

describe('scenes of every Figure-5 task', () => {
  it('are valid and deterministic for several seeds', () => {
    for (const t of FIGURE_5_SUITE) {
      const task = resolveTask(t.scene);
      for (let seed = 0; seed < 8; seed++) {
        const w = scene(task, seed);
        expect(scene(task, seed)).toEqual(w);
        expectValidScene(w);
        for (const step of groundSpec(task.spec, w).steps) {
          for (const k of step.kind === 'pick_place' ? [step.source, step.target] : [step.object]) expect(w.objects.map((o) => o.kind), `${t.id} ${seed}`).toContain(k);
        }
      }
    }
  });

  it('picture cards never appear in the scenes of the other tasks (their random draws are unchanged)', () => {
    for (const text of SUPPORTED_TASKS) {
      const task = resolveTask(text);
      for (let seed = 0; seed < 40; seed++) expect(scene(task, seed).objects.some((o) => o.kind === 'picture_card')).toBe(false);
    }
  });
});

describe('the scripted demonstrator on the new tasks', () => {
  it('succeeds with full marks within its step budget (10 seeds each)', () => {
    for (const text of ['put the carrot on the plate then put the spoon on the towel', ITEM_ABOVE]) {
      const task = resolveTask(text);
      for (let seed = 0; seed < 10; seed++) {
        const d = demonstrate(task, episodeRng(seed, task.slug, 0));
        expect(d.outcome.success, `${task.slug} ${seed}`).toBe(true);
        expect(d.outcome.score).toBe(d.outcome.maxScore);
        expect(d.steps.length).toBeLessThanOrEqual(defaultMaxSteps(task.spec));
      }
    }
    expect(defaultMaxSteps(resolveTask('put the carrot on the plate then put the spoon on the towel').spec)).toBe(200);
    expect(defaultMaxSteps(resolveTask('put the eggplant in the pan then lift the fish').spec)).toBe(160);
  });

  it('simulates item-above datasets deterministically, the instruction English and the frames labelled', async () => {
    const collect = async (): Promise<PendingTrajectory[]> => {
      const out: PendingTrajectory[] = [];
      for await (const p of simulateEpisodes({ tasks: [ITEM_ABOVE], n: 1, seed: 2 })) out.push(p);
      return out;
    };
    const [a, b] = [await collect(), await collect()];
    const t = a[0]!.trajectory;
    expect(t.id).toBe('sim-pick-up-item-above-ash-ketchum-s2-e000');
    expect(t.source).toMatchObject({ kind: 'simulator', task: ITEM_ABOVE, success: true });
    expect(resolveTask(t.instruction).slug).toBe('pick-up-item-above-ash-ketchum');
    for (const [path, bytes] of a[0]!.files) expect(Buffer.from(b[0]!.files.get(path)!).equals(Buffer.from(bytes))).toBe(true);
  });
});

describe('the scripted policy completes every Figure-5 task in the simulator (no noise)', () => {
  /** Subtasks once from the first frame, then chunks until the oracle says each subtask is reached. */
  async function runEpisode(instruction: string, seed: number): Promise<{ subtasks: string[]; history: readonly World[]; initial: World; task: Task }> {
    // No scene: the station lays out what the instruction asks for, in any language it reads.
    const station = new SimStationDriver({ seed });
    await station.reset({ instruction });
    const task = station.simTask();
    const initial = station.simWorld();
    const policy = createScriptedPolicy({ seed, noise: { actionStdMeters: 0, formatErrorRate: 0 } });
    const parsed = parseSubtasks(policy.answer(PolicyStage.subtasks, { task, world: initial, subtaskIndex: 0 }));
    if (!parsed.ok) throw new Error(parsed.error);
    const plan = scriptedSubtasks(task, initial);
    for (const [i, goal] of plan.entries()) {
      for (let c = 0; c < 12 && !subtaskReached(goal, station.simWorld()); c++) {
        const context = { task, world: station.simWorld(), subtaskIndex: i };
        expect(parseMotionPlan(policy.answer(PolicyStage.motionPlan, context)).ok).toBe(true);
        const chunk = parseActionChunk(policy.answer(PolicyStage.action, context));
        if (!chunk.ok) throw new Error(chunk.error);
        await station.execute(chunk.value);
      }
    }
    const history = station.simHistory();
    await station.close();
    return { subtasks: parsed.value, history, initial, task };
  }

  const RUBRIC: Record<string, string[]> = {
    pick_up: ['grasp the eggplant', 'lift the eggplant'],
    pick_place_lift: ['grasp the eggplant', 'eggplant in the pan', 'move toward the fish', 'grasp the fish', 'lift the fish'],
    pick_place_long: ['grasp the carrot', 'carrot on the plate', 'move toward the spoon', 'grasp the spoon', 'spoon on the towel'],
    multilingual: ['grasp the eggplant', 'lift the eggplant'],
  };

  for (const suite of FIGURE_5_SUITE) {
    it(`${suite.id}: success with every rubric milestone, and its plan is a hit (seeds 0-2)`, async () => {
      for (const seed of [0, 1, 2]) {
        const { text } = suiteInstruction(suite, seed);
        const { subtasks, history, initial, task } = await runEpisode(text, seed);
        expect(task.text).toBe(suite.scene);
        const outcome = task.evaluate(history);
        expect(outcome.success, `${suite.id} seed ${seed}`).toBe(true);
        expect(outcome.milestones.every((m) => m.achieved)).toBe(true);
        expect(planHit(subtasks, task, initial)).toEqual({ hit: true, object: true, destination: true });
        if (suite.id === 'item_above') {
          // The plan names the object found above the card in this scene.
          const name = itemAbove(initial, 'Ash Ketchum').replace('_', ' ');
          expect(subtasks).toEqual([`Move to ${name}`, `Grasp ${name}`, `Lift ${name}`]);
          expect(outcome.milestones.map((m) => m.name)).toEqual([`grasp the ${name}`, `lift the ${name}`]);
        } else {
          expect(outcome.milestones.map((m) => m.name)).toEqual(RUBRIC[suite.id]);
        }
      }
    });
  }

  it('needs the scene to plan "the item above", and a wrong plan names a distractor, never a card', () => {
    const task = resolveTask(ITEM_ABOVE);
    expect(() => scriptedSubtasks(task)).toThrow(/the scene is needed/);
    const world = scene(task, 4);
    const item = itemAbove(world, 'Ash Ketchum');
    const policy = createScriptedPolicy({ seed: 1, noise: { actionStdMeters: 0, formatErrorRate: 0, wrongSubtaskRate: 1 } });
    const r = parseSubtasks(policy.answer(PolicyStage.subtasks, { task, world, subtaskIndex: 0 }));
    if (!r.ok) throw new Error(r.error);
    expect(r.value.join(' ')).not.toContain(item.replace('_', ' '));
    expect(r.value.join(' ')).not.toMatch(/card|picture/);
  });
});

describe('plan hit', () => {
  const pickUp = resolveTask('pick up the eggplant');
  const carrotPlate = resolveTask('put the carrot on the plate');
  const sequential = resolveTask('put the eggplant in the pan then lift the fish');
  const long = resolveTask('put the carrot on the plate then put the spoon on the towel');
  const HIT = { hit: true, object: true, destination: true };

  it('accepts synonyms, other languages and plurals, case-insensitively', () => {
    for (const name of ['eggplant', 'Aubergine', 'BRINJAL', 'baingan', 'berenjena', '茄子', 'बैंगन', 'eggplants']) {
      expect(planHit([`Move to ${name}`, `Grasp ${name}`, `Lift ${name}`], pickUp), name).toEqual(HIT);
    }
    expect(planHit(['拿起茄子'], pickUp)).toEqual(HIT);
    expect(planHit(['Move to gajar', 'Grasp gajar', 'Move to dish', 'Release gajar'], carrotPlate)).toEqual(HIT);
    expect(planHit(['1. Move to the CARROT.', '2. Put it on the plate.'], carrotPlate)).toEqual(HIT);
    expect(planHit(['Move to eggplant', 'Put eggplant in the frying pan', 'Lift the fish'], sequential)).toEqual(HIT);
  });

  it('misses a wrong object or destination; pick-ups have no destination', () => {
    expect(planHit(['Move to carrot', 'Grasp carrot', 'Lift carrot'], pickUp)).toEqual({ hit: false, object: false, destination: true });
    expect(planHit(['Move to plate', 'Release'], carrotPlate)).toEqual({ hit: false, object: false, destination: true });
    expect(planHit(['Move to carrot', 'Move to pot', 'Release carrot'], carrotPlate)).toEqual({ hit: false, object: true, destination: false });
    // A dishcloth is a towel, not a dish; a pancake is no pan.
    expect(planHit(['Move to carrot', 'Move to dishcloth'], carrotPlate).destination).toBe(false);
    expect(planHit(['Move to eggplant', 'Move to pancake', 'Lift fish'], sequential)).toEqual({ hit: false, object: true, destination: false });
    expect(planHit(['Move to eggplant', 'Move to pan', 'Release eggplant'], sequential).object).toBe(false); // the fish is missing
    expect(planHit(['Move to carrot', 'Move to plate', 'Move to spoon'], long)).toEqual({ hit: false, object: true, destination: false });
    expect(planHit([], pickUp).hit).toBe(false);
  });

  it('"the item above" hits only on the object found above the card in the initial scene', () => {
    const task = resolveTask(ITEM_ABOVE);
    const world = scene(task, 0);
    const item = itemAbove(world, 'Ash Ketchum').replace('_', ' ');
    expect(planHit([`Move to ${item}`, `Grasp ${item}`, `Lift ${item}`], task, world)).toEqual(HIT);
    expect(planHit(['Move to Ash Ketchum', 'Grasp the item above Ash Ketchum', 'Lift it'], task, world)).toEqual({ hit: false, object: false, destination: true });
    expect(() => planHit([`Move to ${item}`], task)).toThrow(/the scene is needed/);
  });

  it('reads the longest name first, in every script', () => {
    expect(namedObjects('把茄子放进平底锅')).toEqual(new Set(['eggplant', 'pan']));
    expect(namedObjects('锅')).toEqual(new Set(['pot']));
    expect(namedObjects('कपड़ा उठाओ')).toEqual(new Set(['towel']));
    expect(namedObjects('कप उठाओ')).toEqual(new Set(['cup']));
    expect(namedObjects('Put the green cube on the yellow block')).toEqual(new Set(['green_block', 'yellow_block']));
    expect(namedObjects('Move to the silver pot')).toEqual(new Set(['pot']));
  });
});

function expectValidScene(w: World): void {
  const ids = w.objects.map((o) => o.id);
  expect(new Set(ids).size).toBe(ids.length);
  for (const o of w.objects) {
    expect(o.pos[0]).toBeGreaterThanOrEqual(WORKSPACE.x[0]);
    expect(o.pos[0]).toBeLessThanOrEqual(WORKSPACE.x[1]);
    expect(o.pos[1]).toBeGreaterThanOrEqual(WORKSPACE.y[0]);
    expect(o.pos[1]).toBeLessThanOrEqual(WORKSPACE.y[1]);
    expect(o.pos[2]).toBe(0);
    expect(o.support).toEqual({ relation: 'on', target: 'table' });
    expect(o.label !== undefined).toBe(o.kind === 'picture_card');
  }
  // Centers of different objects are never on top of each other.
  for (const a of w.objects) for (const b of w.objects) if (a !== b) expect(Math.hypot(a.pos[0] - b.pos[0], a.pos[1] - b.pos[1])).toBeGreaterThan(0.05);
  expect(w.held).toBeNull();
  expect(w.ee.gripper).toBe(1);
}

