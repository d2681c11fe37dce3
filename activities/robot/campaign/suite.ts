/**
 * The paper's Figure-5 task suite as data (docs/method.md, "Robot evaluation"): what each row means in the
 * simulator, the instructions its trials are given, whether it is in-distribution (the subtask
 * stage's decoding temperature depends on it) and the paper's success rates to set results against.
 * Plain data and pure functions (no I/O, no Node imports).
 */
import { DEFAULT_CAMPAIGN_TRIALS, type CampaignPreset, type CampaignTrialDesign, type EvalCampaignInput, type SuiteTaskId, type TaskTrialDesign } from '../../../data-schemas/robot';
import { instructionIn, type Language } from '../sim/languages';
import { resolveTask } from '../sim/tasks';
import type { PaperFigure5Row } from './report';

export interface SuiteInstruction {
  readonly lang: Language;
  readonly text: string;
}

/** Success % per method in Figure 5. */
export interface PaperSuccess {
  readonly openvla: number;
  readonly ecot: number;
  readonly vlm2vlaAt: number;
  readonly vlm2vla: number;
}

export interface SuiteTask {
  readonly id: SuiteTaskId;
  /** The paper's row name. */
  readonly name: string;
  /** The simulator task whose scene is laid out (`resolveTask(scene)`), in canonical English. */
  readonly scene: string;
  /** Instructions the policy is given, cycled over trials (`suiteInstruction`); each means `scene`. */
  readonly instructions: readonly SuiteInstruction[];
  /** In-distribution tasks decode subtasks at temperature 0.5, the others at 1.0 (docs/method.md, "The three prompts and their decoding"). */
  readonly inDistribution: boolean;
  readonly paper: PaperSuccess;
  /** Trials per method in the paper. */
  readonly paperTrials: number;
}

const english = (scene: string): SuiteInstruction[] => [{ lang: 'en', text: resolveTask(scene).text }];

const MULTILINGUAL_SCENE = 'pick up the eggplant';

export const FIGURE_5_SUITE: readonly SuiteTask[] = [
  {
    id: 'pick_up',
    name: 'Pick up (in-distribution)',
    scene: 'pick up the eggplant',
    instructions: english('pick up the eggplant'),
    inDistribution: true,
    paper: { openvla: 78, ecot: 52, vlm2vlaAt: 57, vlm2vla: 62 },
    paperTrials: 30,
  },
  {
    id: 'pick_place_lift',
    name: 'Pick, place and lift (sequential)',
    // Its milestones are the paper's 5-point rubric (docs/method.md): contact (grasp) eggplant, eggplant in pan,
    // move toward fish, contact (grasp) fish, lift fish.
    scene: 'put the eggplant in the pan then lift the fish',
    instructions: english('put the eggplant in the pan then lift the fish'),
    inDistribution: true,
    paper: { openvla: 77, ecot: 58, vlm2vlaAt: 43, vlm2vla: 62 },
    paperTrials: 30,
  },
  {
    id: 'pick_place_long',
    name: 'Pick and place (long horizon)',
    // The simulator has no drawers or other articulated props, so "long horizon" is two of
    // SimplerEnv's WidowX pick-and-places chained: ten subtasks, twice the steps of either, and the
    // same 5-point rubric shape as the sequential task (grasp carrot, carrot on plate, move toward
    // spoon, grasp spoon, spoon on towel).
    scene: 'put the carrot on the plate then put the spoon on the towel',
    instructions: english('put the carrot on the plate then put the spoon on the towel'),
    inDistribution: true,
    paper: { openvla: 49, ecot: 33, vlm2vlaAt: 34, vlm2vla: 51 },
    paperTrials: 30,
  },
  {
    id: 'multilingual',
    name: 'Pick up, multilingual instruction',
    // The in-distribution pick-up's scene, asked in Spanish, Mandarin and Hindi in turn (30 trials each of 90).
    scene: MULTILINGUAL_SCENE,
    instructions: (['es', 'zh', 'hi'] as const).map((lang) => ({ lang, text: instructionIn(resolveTask(MULTILINGUAL_SCENE), lang) })),
    inDistribution: false,
    paper: { openvla: 1, ecot: 5, vlm2vlaAt: 28, vlm2vla: 53 },
    paperTrials: 90,
  },
  {
    id: 'item_above',
    name: 'Pick up "the item above Ash Ketchum"',
    scene: 'pick up the item above Ash Ketchum',
    instructions: english('pick up the item above Ash Ketchum'),
    inDistribution: false,
    paper: { openvla: 0, ecot: 0, vlm2vlaAt: 30, vlm2vla: 60 },
    paperTrials: 30,
  },
];

/** Figure 5 as the reports show it: each task's paper success % per method and the paper's trial count. */
export function paperFigure5Rows(): PaperFigure5Row[] {
  return FIGURE_5_SUITE.map((t) => ({ taskId: t.id, name: t.name, ...t.paper, trials: t.paperTrials }));
}

export function suiteTask(id: SuiteTaskId): SuiteTask {
  const task = FIGURE_5_SUITE.find((t) => t.id === id);
  if (!task) throw new Error(`no Figure-5 task "${String(id)}"`);
  return task;
}

/** The instruction of trial `trial` (0-based): the task's instructions in turn. */
export function suiteInstruction(task: SuiteTask, trial: number): SuiteInstruction {
  if (!Number.isInteger(trial) || trial < 0) throw new RangeError(`trial must be a non-negative integer, got ${trial}`);
  const instruction = task.instructions[trial % task.instructions.length];
  if (!instruction) throw new Error(`the Figure-5 task "${task.id}" has no instructions`);
  return instruction;
}

/** The trial designs a campaign can name (`preset`). */
export const CAMPAIGN_PRESETS: Readonly<Record<CampaignPreset, { readonly description: string; readonly trials: (task: SuiteTask) => number }>> = {
  'figure5-paper': {
    description: "the paper's Figure-5 design: 30 trials per task, 90 for the multilingual task (30 in each language)",
    trials: (task) => task.paperTrials,
  },
};

/**
 * What decides a campaign's trials. `trialsPerTask` may be absent: a planCampaign scheduled by a
 * campaign that started before it existed.
 */
export type CampaignDesignInput = Pick<EvalCampaignInput, 'tasks' | 'trials' | 'preset' | 'seed'> & Partial<Pick<EvalCampaignInput, 'trialsPerTask'>>;

/** How many trials each task gets: its `trialsPerTask` entry, else the preset's count, else `trials` (default 3). */
export function campaignTrialDesign(input: CampaignDesignInput): CampaignTrialDesign {
  const preset = input.preset === undefined ? undefined : CAMPAIGN_PRESETS[input.preset];
  const tasks = input.tasks.map((id): TaskTrialDesign => {
    const task = suiteTask(id);
    const own = input.trialsPerTask?.[id];
    const [trials, from] =
      own !== undefined
        ? ([own, 'trialsPerTask'] as const)
        : preset
          ? ([preset.trials(task), 'preset'] as const)
          : input.trials !== undefined
            ? ([input.trials, 'trials'] as const)
            : ([DEFAULT_CAMPAIGN_TRIALS, 'default'] as const);
    const languages: Partial<Record<Language, number>> = {};
    for (let trial = 0; trial < trials; trial++) {
      const lang = suiteInstruction(task, trial).lang;
      languages[lang] = (languages[lang] ?? 0) + 1;
    }
    return { taskId: id, trials, from, languages: new Set(task.instructions.map((i) => i.lang)).size > 1 ? languages : null };
  });
  return {
    preset: input.preset ?? null,
    presetDescription: preset?.description ?? null,
    seed: input.seed,
    tasks,
    totalTrials: tasks.reduce((n, t) => n + t.trials, 0),
  };
}
