/**
 * The simulator station (embedded default): the tabletop world of activities/robot/sim stepped with
 * the same `step` the demonstrator uses, frames from `renderFrame` (image_0, JPEG).
 *
 * The simulator's arm moves at most MAX_STEP_M per axis and control step; a chunk action that is
 * larger (but within the safety limits) is executed as several equal control steps along the same
 * line, the gripper command taking effect on the last one, so the arm always ends exactly where the
 * chunk says: nothing is ever clipped. The configured workspace box is narrowed to what the
 * simulator can reach for the same reason.
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ActionChunk } from '../../../data-schemas/d-lan';
import { SafetyLimits, type SafetyLimitsInput } from '../../../data-schemas/station';
import { renderFrame } from '../sim/render';
import { episodeRng } from '../sim/rng';
import { groundSpec, resolveTask, UnknownTaskError, type GroundedSpec, type Task } from '../sim/tasks';
import { findObject, MAX_STEP_M, OBJECT_SPECS, type ObjectKind, state7, step, WORKSPACE, type World } from '../sim/world';
import { StationError } from './errors';
import { assertChunkSafe, intersectBounds } from './safety';
import type { ExecuteOptions, ExecuteResult, Observation, ResetTask, StationDriver } from './types';

export interface SimStationOptions {
  /** The scene seed of a reset that names none. */
  seed?: number;
  /** Wall-clock pause after each action, milliseconds (200 is real time at 5 Hz). */
  stepDelayMs?: number;
  safety?: SafetyLimitsInput;
  /** Called after each executed action (e.g. to heartbeat); the chunk waits for it. */
  onAction?: (index: number, state: number[]) => void | Promise<void>;
  /**
   * A JSON-lines log of the arm's worlds. With it the simulated arm outlives its process, like a
   * physical one outlives a crashed worker: a new driver on the same file continues from the last
   * logged control step (a torn last line is ignored).
   */
  stateFile?: string;
}

/**
 * One line of the arm log: the reset that began the episode (the scene laid out and the task the
 * episode is judged against; logs written before the two could differ have no `task`), or the world
 * after a control step.
 */
type ArmLogLine = { reset: { scene: string; task?: string; seed: number }; actions: 0; world: World } | { actions: number; world: World };

/** The box the simulated arm can reach. */
export const SIM_BOUNDS = {
  min: [WORKSPACE.x[0], WORKSPACE.y[0], WORKSPACE.z[0]] as [number, number, number],
  max: [WORKSPACE.x[1], WORKSPACE.y[1], WORKSPACE.z[1]] as [number, number, number],
};

/**
 * The initial world of a simulated episode: the scene `simulateEpisode(task, seed, 0)` starts from,
 * so a station reset with seed s shows the scene of the simulated dataset's episode 0 for seed s.
 */
export function simScene(task: Task, seed: number): World {
  const rng = episodeRng(seed, task.slug, 0);
  task.phrase(rng);
  return task.sampleScene(rng);
}

/** What a simulated episode sets up and is judged against. */
export interface SimEpisodePlan {
  /** The task whose scene is laid out. */
  readonly sceneTask: Task;
  /** The task the episode is judged against (success, partial credit, the oracle, the scripted policy). */
  readonly task: Task;
  /** Where `task` came from: the episode's instruction, or (an instruction the simulator cannot read) its scene. */
  readonly judgedAgainst: 'instruction' | 'scene';
  /** The initial world. */
  readonly world: World;
}

const resolveOrError = (text: string): Task | UnknownTaskError => {
  try {
    return resolveTask(text);
  } catch (err) {
    if (err instanceof UnknownTaskError) return err;
    throw err;
  }
};

/**
 * The scene and the task of a simulated episode, or a StationError 'bad_request' before anything
 * moves. Without a scene the instruction is the scene (in any language the simulator reads), so an
 * instruction it cannot set up is refused. With a scene, an instruction the simulator reads is what
 * the episode is judged against (and it must be doable there); one it cannot read is judged against
 * the scene, the episode's own statement of what the instruction means.
 */
export function planSimEpisode(request: Pick<ResetTask, 'instruction' | 'scene'>, seed: number): SimEpisodePlan {
  const fromInstruction = resolveOrError(request.instruction);
  if (request.scene === undefined) {
    if (fromInstruction instanceof UnknownTaskError) {
      throw new StationError('bad_request', `the episode names no scene and the simulator cannot set up its instruction: ${fromInstruction.message}`, { cause: fromInstruction });
    }
    return { sceneTask: fromInstruction, task: fromInstruction, judgedAgainst: 'instruction', world: simScene(fromInstruction, seed) };
  }
  const sceneTask = resolveOrError(request.scene);
  if (sceneTask instanceof UnknownTaskError) throw new StationError('bad_request', sceneTask.message, { cause: sceneTask });
  const world = simScene(sceneTask, seed);
  if (fromInstruction instanceof UnknownTaskError) return { sceneTask, task: sceneTask, judgedAgainst: 'scene', world };
  const nameOf = (k: ObjectKind): string => OBJECT_SPECS[k].names[0] ?? k;
  const cannot = (why: string): StationError =>
    new StationError('bad_request', `the instruction "${request.instruction}" cannot be done in the scene "${sceneTask.text}" (seed ${seed}): ${why} (it has: ${world.objects.map((o) => nameOf(o.kind)).join(', ')})`);
  let grounded: GroundedSpec;
  try {
    grounded = groundSpec(fromInstruction.spec, world);
  } catch (err) {
    throw cannot((err as Error).message);
  }
  const missing = [...new Set(grounded.steps.flatMap((s) => (s.kind === 'pick_place' ? [s.source, s.target] : [s.object])))].filter((k) => findObject(world, k) === undefined);
  if (missing.length > 0) throw cannot(`it needs the ${missing.map(nameOf).join(' and the ')}, which the scene does not have`);
  return { sceneTask, task: fromInstruction, judgedAgainst: 'instruction', world };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The control steps one chunk action takes in the simulator, from `world`. */
export function simSteps(world: World, action: readonly number[]): World[] {
  const [dx = 0, dy = 0, dz = 0, g = world.ee.gripper] = action;
  // The 1e-9 keeps an action of exactly MAX_STEP_M per axis at one step despite float noise.
  const n = Math.max(1, Math.ceil(Math.max(Math.abs(dx), Math.abs(dy), Math.abs(dz)) / MAX_STEP_M - 1e-9));
  const worlds: World[] = [];
  let w = world;
  for (let k = 1; k <= n; k++) {
    // Hold the current opening until the last sub-step: the grasp happens where the action ends.
    w = step(w, [dx / n, dy / n, dz / n, 0, 0, 0, k === n ? g : w.ee.gripper]);
    worlds.push(w);
  }
  return worlds;
}

export class SimStationDriver implements StationDriver {
  readonly kind = 'sim' as const;
  /** The limits enforced: the configured ones, with the box narrowed to what the simulator reaches. */
  readonly limits: SafetyLimits;
  private world: World | undefined;
  private task: Task | undefined;
  private history: World[] = [];
  private actions = 0;
  private busy = false;
  private stopRequested = false;
  private closed = false;
  private lastStop: string | undefined;

  constructor(private readonly options: SimStationOptions) {
    const limits = SafetyLimits.parse(options.safety ?? {});
    this.limits = { ...limits, bounds: intersectBounds(limits.bounds, SIM_BOUNDS) };
    if (options.seed !== undefined && (!Number.isInteger(options.seed) || options.seed < 0)) {
      throw new RangeError(`seed must be a non-negative integer, got ${options.seed}`);
    }
    if (options.stateFile) this.restore(options.stateFile);
  }

  private restore(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return;
    }
    const lines: ArmLogLine[] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        lines.push(JSON.parse(line) as ArmLogLine);
      } catch {
        break; // the line a crash cut short: the arm never got past the previous one
      }
    }
    const first = lines[0];
    if (!first || !('reset' in first)) return;
    this.task = resolveTask(first.reset.task ?? first.reset.scene);
    this.history = lines.map((l) => l.world);
    const last = lines[lines.length - 1] ?? first;
    this.world = last.world;
    this.actions = last.actions;
  }

  private log(line: ArmLogLine): void {
    const file = this.options.stateFile;
    if (!file) return;
    if ('reset' in line) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(`${file}.tmp`, JSON.stringify(line) + '\n');
      renameSync(`${file}.tmp`, file);
    } else {
      appendFileSync(file, JSON.stringify(line) + '\n');
    }
  }

  async reset(task: ResetTask): Promise<Observation> {
    this.ensureOpen();
    if (this.busy) throw new StationError('busy', 'cannot reset while a chunk is executing', { retryable: true });
    const seed = task.seed ?? this.options.seed ?? 0;
    if (!Number.isInteger(seed) || seed < 0) throw new StationError('bad_request', `seed must be a non-negative integer, got ${seed}`);
    const plan = planSimEpisode(task, seed);
    this.task = plan.task;
    this.world = plan.world;
    this.history = [this.world];
    this.actions = 0;
    this.stopRequested = false;
    this.log({ reset: { scene: plan.sceneTask.text, task: plan.task.text, seed }, actions: 0, world: this.world });
    return this.observe();
  }

  async observe(): Promise<Observation> {
    const world = this.current();
    const bytes = await renderFrame(world, 'image_0');
    return {
      image: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      mimeType: 'image/jpeg',
      state: [...state7(world)],
      step: this.actions,
      timestamp: new Date().toISOString(),
    };
  }

  async execute(chunk: ActionChunk, signal?: AbortSignal, options: ExecuteOptions = {}): Promise<ExecuteResult> {
    const start = this.current();
    if (this.busy) throw new StationError('busy', 'another chunk is executing on this station', { retryable: true });
    if (options.expectedStep !== undefined && options.expectedStep !== this.actions) {
      throw new StationError('stale_observation', `the chunk was planned at step ${options.expectedStep} but the arm is at step ${this.actions}; observe again`);
    }
    assertChunkSafe(chunk, state7(start), this.limits);
    this.busy = true;
    this.stopRequested = false;
    let executed = 0;
    const trace: Observation[] = [];
    try {
      for (let i = 0; i < chunk.length; i++) {
        if (signal?.aborted || this.stopRequested || this.closed) break;
        const worlds = simSteps(this.current(), chunk[i] ?? []);
        this.history.push(...worlds);
        this.world = worlds[worlds.length - 1];
        this.actions++;
        executed++;
        // Every sub-step counts as the new action: a crash part-way leaves the step advanced, so a
        // chunk planned before it is refused as stale instead of running again.
        for (const w of worlds) this.log({ actions: this.actions, world: w });
        trace.push(await this.observe());
        await this.options.onAction?.(i, [...state7(this.current())]);
        if (this.options.stepDelayMs) await sleep(this.options.stepDelayMs);
        else await tick();
      }
    } finally {
      this.busy = false;
    }
    return { executed, observation: trace[trace.length - 1] ?? (await this.observe()), stopped: executed < chunk.length, trace };
  }

  safeStop(reason: string): Promise<void> {
    // Halting is all a stop does: the gripper keeps its opening, a held object stays held.
    this.stopRequested = true;
    this.lastStop = reason;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    this.stopRequested = true;
    return Promise.resolve();
  }

  /** A snapshot of the true world (for the simulator oracle verifier). */
  simWorld(): World {
    return structuredClone(this.current());
  }

  /** The task the last reset's episode is judged against (see `planSimEpisode`). */
  simTask(): Task {
    if (!this.task) throw new StationError('not_ready', 'the station has not been reset');
    return this.task;
  }

  /** Every control step's world since the last reset, the initial one first (for `task.evaluate`). */
  simHistory(): readonly World[] {
    return structuredClone(this.history);
  }

  /** The reason of the last safeStop, if any. */
  lastStopReason(): string | undefined {
    return this.lastStop;
  }

  private ensureOpen(): void {
    if (this.closed) throw new StationError('closed', 'the station driver is closed');
  }

  private current(): World {
    this.ensureOpen();
    if (!this.world) throw new StationError('not_ready', 'the station has not been reset');
    return this.world;
  }
}
