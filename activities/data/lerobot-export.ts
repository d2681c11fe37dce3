/**
 * LeRobot datasets out: a D_lan dataset (with the D_rob trajectories it labels) or a D_rob dataset
 * becomes a LeRobot dataset (format v3.0), written by lerobot's own LeRobotDataset in a child of the
 * LeRobot environment (python/lerobot/vla_lerobot/write.py). Each D_lan step's subtask, motion plan
 * and action-chunk text go on every frame it covers, as string features.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DLanRecord } from '../../data-schemas/d-lan';
import { DRobTrajectory, type Camera } from '../../data-schemas/d-rob';
import { formatActionChunk } from '../../data-schemas/prompts';
import { joinUri } from '../../data-schemas/uri';
import type { PythonEnv } from '../runtime/python-env';
import { getJson } from '../store';
import type { ObjectStore } from '../store/types';
import { readManifest, readTrajectory } from './dataset-writer';
import { DataError, DataErrorCode, DatasetInvalidError } from './errors';

const run = promisify(execFile);

/** The string features a D_lan export adds to every frame: the D_lan step covering it. */
export const LEROBOT_LANGUAGE_FEATURES = {
  subtask: 'language.subtask',
  motionPlan: 'language.motion_plan',
  actionChunk: 'language.action_chunk',
} as const;
type LanguageFeature = (typeof LEROBOT_LANGUAGE_FEATURES)[keyof typeof LEROBOT_LANGUAGE_FEATURES];

export interface ExportLeRobotOptions {
  /** A D_lan dataset (a relabel's output) or a D_rob dataset (an import, a simulation, robot episodes). */
  datasetUri: string;
  /** Local directory to create; must not exist. */
  outDir: string;
  /** The LeRobot `repo_id` recorded in the card. @default `local/<dataset name>` */
  repoId?: string;
  /** Licence identifier for the dataset card (a Hugging Face licence id). */
  license?: string;
  onProgress?: (line: string) => void;
}

export interface ExportLeRobotResult {
  outDir: string;
  episodes: number;
  frames: number;
  /** Whether the frames carry the D_lan language features. */
  language: boolean;
}

interface StagedEpisode {
  id: string;
  task: string;
  steps: { frames: Partial<Record<Camera, string>>; state: number[]; action: number[]; language: Partial<Record<LanguageFeature, string>> }[];
}

/** Per D_rob step, the language of the D_lan step whose source range covers it. */
function languageBySourceStep(record: DLanRecord, steps: number): Record<LanguageFeature, string>[] {
  const out: Record<LanguageFeature, string>[] = [];
  for (const step of record.steps) {
    const [from, to] = step.sourceSteps;
    if (to > steps) throw new DatasetInvalidError(`D_lan record ${record.trajectoryId} step ${step.index}: sourceSteps [${from}, ${to}) run past the trajectory's ${steps} steps`);
    const language = {
      [LEROBOT_LANGUAGE_FEATURES.subtask]: step.subtask,
      [LEROBOT_LANGUAGE_FEATURES.motionPlan]: step.motionPlan,
      [LEROBOT_LANGUAGE_FEATURES.actionChunk]: formatActionChunk(step.actionChunk),
    };
    for (let t = from; t < to; t++) out[t] = language;
  }
  const uncovered = Array.from({ length: steps }, (_, t) => t).filter((t) => out[t] === undefined);
  if (uncovered.length > 0) throw new DatasetInvalidError(`D_lan record ${record.trajectoryId}: source steps ${uncovered.join(', ')} are covered by no language step`);
  return out;
}

/**
 * Exports `datasetUri` as a LeRobot v3.0 dataset in `outDir`: per trajectory one episode, per step
 * one frame with every camera (as video, lerobot's default encoding), the state and the action
 * (7 floats each, D_rob's convention, names x..gripper), the instruction as the task and, for a
 * D_lan dataset, the language features. Written beside `outDir` and renamed into place when
 * complete: a failed export leaves no directory that looks like a dataset.
 *
 * @throws DataError for an existing output, mixed control rates or cameras; DatasetInvalidError for a broken input
 */
export async function exportLeRobot(store: ObjectStore, python: PythonEnv, options: ExportLeRobotOptions): Promise<ExportLeRobotResult> {
  const outDir = resolve(options.outDir);
  if (existsSync(outDir)) throw new DataError(DataErrorCode.DatasetExists, `${outDir} already exists; a LeRobot export creates its directory`);
  const manifest = await readManifest(store, options.datasetUri);
  const language = manifest.kind === 'd_lan';
  const scratch = await mkdtemp(join(tmpdir(), 'vla-lerobot-export-'));
  const partial = `${outDir}.partial-${process.pid}`;
  try {
    const episodes: StagedEpisode[] = [];
    let fps: number | undefined;
    let robot: string | undefined;
    let cameras: Camera[] | undefined;
    for (const entry of manifest.trajectories) {
      let trajectory: DRobTrajectory;
      let sourceUri = options.datasetUri;
      let lines: Record<LanguageFeature, string>[] | undefined;
      if (language) {
        const record = await getJson(store, joinUri(options.datasetUri, entry.record), DLanRecord, 'a D_lan record');
        sourceUri = record.provenance.sourceDataset;
        trajectory = await getJson(store, joinUri(sourceUri, record.provenance.sourceRecord), DRobTrajectory, 'a D_rob trajectory');
        lines = languageBySourceStep(record, trajectory.steps.length);
      } else {
        trajectory = await readTrajectory(store, options.datasetUri, entry);
      }
      // One LeRobot dataset has one fps and one set of cameras.
      fps ??= trajectory.controlHz;
      robot ??= trajectory.robot;
      cameras ??= [...trajectory.cameras].sort();
      if (trajectory.controlHz !== fps) throw new DataError(DataErrorCode.InvalidInput, `trajectory ${trajectory.id} runs at ${trajectory.controlHz} Hz, the others at ${fps} Hz; a LeRobot dataset has one fps`);
      if (!Number.isInteger(fps)) throw new DataError(DataErrorCode.InvalidInput, `trajectory ${trajectory.id} runs at ${fps} Hz; LeRobot's fps is a whole number`);
      if ([...trajectory.cameras].sort().join() !== cameras.join()) {
        throw new DataError(DataErrorCode.InvalidInput, `trajectory ${trajectory.id} has cameras ${trajectory.cameras.join(', ')}, the others ${cameras.join(', ')}; a LeRobot dataset has one set of cameras`);
      }
      const steps: StagedEpisode['steps'] = [];
      for (const step of trajectory.steps) {
        const frames: Partial<Record<Camera, string>> = {};
        for (const camera of cameras) {
          const path = step.frames[camera];
          if (path === undefined) throw new DataError(DataErrorCode.InvalidInput, `trajectory ${trajectory.id} step ${step.index} has no ${camera} frame; every LeRobot frame needs every camera`);
          const staged = join('frames', `${episodes.length}`, path);
          await mkdir(dirname(join(scratch, staged)), { recursive: true });
          await writeFile(join(scratch, staged), await store.get(joinUri(sourceUri, path)));
          frames[camera] = staged;
        }
        steps.push({ frames, state: [...step.state], action: [...step.action], language: lines?.[step.index] ?? {} });
      }
      episodes.push({ id: trajectory.id, task: language ? entry.instruction : trajectory.instruction, steps });
    }
    if (episodes.length === 0) throw new DataError(DataErrorCode.InvalidInput, `${options.datasetUri} holds no trajectories`);

    const spec = {
      repoId: options.repoId ?? `local/${manifest.name}`,
      fps,
      robotType: robot,
      cameras,
      languageFeatures: language ? Object.values(LEROBOT_LANGUAGE_FEATURES) : [],
      ...(options.license !== undefined && { license: options.license }),
      episodes,
    };
    const specFile = join(scratch, 'spec.json');
    await writeFile(specFile, JSON.stringify(spec));
    await mkdir(dirname(outDir), { recursive: true });
    options.onProgress?.(`writing ${episodes.length} episodes with lerobot`);
    try {
      await run(python.python, ['-m', 'vla_lerobot.write', '--spec', specFile, '--root', partial], {
        env: { ...python.env, HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1' },
        maxBuffer: 64 * 1024 * 1024,
      });
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? String(err);
      throw new DataError(DataErrorCode.InvalidInput, `lerobot could not write the export: ${stderr.trim().split('\n').slice(-3).join('\n')}`, { cause: err });
    }
    await rename(partial, outDir);
    return { outDir, episodes: episodes.length, frames: episodes.reduce((n, e) => n + e.steps.length, 0), language };
  } finally {
    await rm(partial, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  }
}
