/**
 * The tabletop simulator: a WidowX-250-like arm in a toy kitchen, Bridge conventions throughout.
 * `simulateEpisodes` turns scripted, noisy demonstrations into D_rob trajectories with rendered frames.
 */
import { BRIDGE_CONTROL_HZ, Camera, D_ROB_FORMAT_VERSION, type DRobStep, type DRobTrajectory } from '../../../data-schemas/d-rob';
import { framePath, type PendingTrajectory } from '../../data/dataset-writer';
import { demonstrate, type Demonstration } from './demonstrator';
import { renderFrame } from './render';
import { episodeRng } from './rng';
import { resolveTask, type Task } from './tasks';

export * from './world';
export * from './layout';
export * from './tasks';
export * from './above';
export * from './languages';
export * from './demonstrator';
export * from './render';
export * from './rng';
export type { PendingTrajectory } from '../../data/dataset-writer';

/** Recorded in every trajectory's provenance; bump when episodes for the same seed would change. */
export const SIMULATOR_VERSION = 'vla-sim-0.1.0';
export const SIM_ROBOT = 'widowx_250s';

export interface SimulateOptions {
  /** Instructions, each parsed by `parseTask`; wordings of the same task are simulated once. */
  tasks: readonly string[];
  /** Episodes per task. */
  n: number;
  /** Non-negative integer; the same seed gives byte-identical output. */
  seed: number;
  /** Cameras to render, `image_0` by default. */
  cameras?: readonly Camera[];
}

export interface SimulatedEpisode {
  task: Task;
  episodeIndex: number;
  instruction: string;
  demo: Demonstration;
}

/** `sim-<task-slug>-s<seed>-e<index:03d>`. */
export function simTrajectoryId(taskSlug: string, seed: number, episodeIndex: number): string {
  return `sim-${taskSlug}-s${seed}-e${String(episodeIndex).padStart(3, '0')}`;
}

/** Distinct tasks of the given instructions, in order; throws UnknownTaskError on the first bad one. */
export function resolveTasks(texts: readonly string[]): Task[] {
  const bySlug = new Map<string, Task>();
  for (const text of texts) {
    const task = resolveTask(text);
    if (!bySlug.has(task.slug)) bySlug.set(task.slug, task);
  }
  return [...bySlug.values()];
}

/** One episode without rendering: the scene, wording and demonstration all come from (seed, task, index). */
export function simulateEpisode(task: Task, seed: number, episodeIndex: number): SimulatedEpisode {
  const rng = episodeRng(seed, task.slug, episodeIndex);
  const instruction = task.phrase(rng);
  return { task, episodeIndex, instruction, demo: demonstrate(task, rng) };
}

function checkOptions(opts: SimulateOptions): void {
  if (!Number.isInteger(opts.seed) || opts.seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${opts.seed}`);
  if (!Number.isInteger(opts.n) || opts.n < 0) throw new RangeError(`n must be a non-negative integer, got ${opts.n}`);
  if (opts.n > 1000) throw new RangeError(`n must be at most 1000 (episode indexes are 3 digits), got ${opts.n}`);
  for (const c of opts.cameras ?? []) Camera.parse(c);
}

/** Renders an episode into a trajectory record plus its frame files. */
export async function toPendingTrajectory(episode: SimulatedEpisode, seed: number, cameras: readonly Camera[] = ['image_0']): Promise<PendingTrajectory> {
  const { task, episodeIndex, demo } = episode;
  const id = simTrajectoryId(task.slug, seed, episodeIndex);
  const files = new Map<string, Uint8Array>();
  const last = demo.steps.length - 1;
  const rendered = await Promise.all(demo.steps.map((s) => Promise.all(cameras.map((c) => renderFrame(s.world, c)))));
  const steps = demo.steps.map((s, i): DRobStep => {
    const frames: Partial<Record<Camera, string>> = {};
    cameras.forEach((camera, k) => {
      const path = framePath(id, camera, i);
      frames[camera] = path;
      const bytes = rendered[i]?.[k];
      if (!bytes) throw new Error(`frame ${path} was not rendered`);
      files.set(path, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    });
    return { index: i, frames, state: s.state, action: s.action, isFirst: i === 0, isLast: i === last, isTerminal: i === last };
  });
  const trajectory: DRobTrajectory = {
    formatVersion: D_ROB_FORMAT_VERSION,
    id,
    instruction: episode.instruction,
    robot: SIM_ROBOT,
    controlHz: BRIDGE_CONTROL_HZ,
    cameras: [...cameras],
    steps,
    source: { kind: 'simulator', simulatorVersion: SIMULATOR_VERSION, task: task.text, seed, episodeIndex, success: demo.outcome.success },
  };
  return { trajectory, files };
}

/**
 * `n` episodes of each task, rendered, as trajectories ready for `writeDataset`. Deterministic: the
 * same options give byte-identical trajectories and frames. Task texts are checked before anything
 * is simulated.
 */
export async function* simulateEpisodes(opts: SimulateOptions): AsyncGenerator<PendingTrajectory> {
  checkOptions(opts);
  const tasks = resolveTasks(opts.tasks);
  const cameras = opts.cameras && opts.cameras.length > 0 ? [...new Set(opts.cameras)] : (['image_0'] as Camera[]);
  for (const task of tasks) {
    for (let e = 0; e < opts.n; e++) {
      yield await toPendingTrajectory(simulateEpisode(task, opts.seed, e), opts.seed, cameras);
    }
  }
}
