import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest, readTrajectory } from '../../activities/data';
import { exportLeRobot, LEROBOT_LANGUAGE_FEATURES } from '../../activities/data/lerobot-export';
import { importLeRobot } from '../../activities/data/lerobot-import';
import type { PythonEnv } from '../../activities/runtime/python-env';
import { FileStore, getJson } from '../../activities/store';
import { DLanRecord } from '../../data-schemas/d-lan';
import { DRobTrajectory } from '../../data-schemas/d-rob';
import { formatActionChunk } from '../../data-schemas/prompts';
import { fileUri, joinUri } from '../../data-schemas/uri';
import type { relabelDataset } from '../../workflows';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { ensureLeRobotEnv } from '../../infra/python';
import { simulateSample } from '../helpers/datasets';
import { connectTestTemporal, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';

const run = promisify(execFile);
const READ_DATASET = join(REPO_ROOT, 'test/fixtures/lerobot/read_dataset.py');
// Each export and each read starts lerobot (torch) in a child: tens of seconds on a loaded 2-core machine.
const SLOW = 5 * 60_000;

interface LoadedFrame {
  episode_index: number;
  frame_index: number;
  task: string;
  action: number[];
  'observation.state': number[];
  'observation.images.image_0': { shape: number[] };
  [feature: string]: unknown;
}
interface Loaded {
  codebaseVersion: string;
  fps: number;
  robotType: string;
  episodes: number;
  features: Record<string, { dtype: string; names: unknown }>;
  frames: LoadedFrame[];
}

describe('LeRobot datasets out (loaded back by the real lerobot package, offline)', () => {
  const store = new FileStore();
  let lerobot: PythonEnv;
  let env: TemporalTestEnv;
  let dir: string;
  let simUri: string;
  let dlanUri: string;

  /** The export as LeRobotDataset(repo_id, root=...) reads it, every frame through dataset[i]. */
  async function load(root: string, repoId: string): Promise<Loaded> {
    const { stdout } = await run(lerobot.python, [READ_DATASET, '--repo-id', repoId, '--root', root], { env: lerobot.env, maxBuffer: 256 * 1024 * 1024 });
    return JSON.parse(stdout) as Loaded;
  }

  beforeAll(async () => {
    // Built by `infra/setup.sh --for-tests`; when this file runs alone the first time, built here (minutes).
    lerobot = await ensureLeRobotEnv(loadConfig().cacheDir);
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-lerobot-export-'));
    simUri = fileUri(join(dir, 'sim'));
    await simulateSample(store, simUri, ['put the carrot on the plate', 'pick up the eggplant'], 1, 0);
    const relabel = await withCpuWorker(env, store, 'lerobot-export', (taskQueue) =>
      env.client.workflow.execute<typeof relabelDataset>('relabelDataset', { taskQueue, workflowId: `${taskQueue}-relabel`, args: [{ datasetUri: simUri }] }),
    );
    expect(relabel.counts.done).toBe(2);
    dlanUri = relabel.outputUri;
  }, 20 * 60_000);
  afterAll(async () => {
    await env?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("exports D_lan: every D_rob step a frame with its action, the instruction as task, and the covering D_lan step's subtask, motion plan and chunk text", async () => {
    const outDir = join(dir, 'export-dlan');
    const result = await exportLeRobot(store, lerobot, { datasetUri: dlanUri, outDir, repoId: 'vla/sim-dlan', license: 'cc-by-4.0' });
    const dlan = await readManifest(store, dlanUri);
    const records = await Promise.all(dlan.trajectories.map((t) => getJson(store, joinUri(dlanUri, t.record), DLanRecord)));
    const trajectories = await Promise.all(records.map((r) => getJson(store, joinUri(r.provenance.sourceDataset, r.provenance.sourceRecord), DRobTrajectory)));
    const totalSteps = trajectories.reduce((n, t) => n + t.steps.length, 0);
    expect(result).toEqual({ outDir, episodes: 2, frames: totalSteps, language: true });
    // Nothing left beside it: the export was written aside and renamed into place.
    expect(readdirSync(dir).filter((name) => name.startsWith('export-dlan'))).toEqual(['export-dlan']);

    const loaded = await load(outDir, 'vla/sim-dlan');
    expect(loaded).toMatchObject({ codebaseVersion: 'v3.0', fps: 5, robotType: 'widowx_250s', episodes: 2 });
    for (const feature of Object.values(LEROBOT_LANGUAGE_FEATURES)) expect(loaded.features[feature]?.dtype).toBe('string');
    expect(loaded.features['action']!.names).toEqual(['x', 'y', 'z', 'roll', 'pitch', 'yaw', 'gripper']);
    expect(loaded.features['observation.images.image_0']!.dtype).toBe('video');
    expect(loaded.frames).toHaveLength(totalSteps);

    for (const frame of loaded.frames) {
      const record = records[frame.episode_index]!;
      const trajectory = trajectories[frame.episode_index]!;
      const step = record.steps.find((s) => s.sourceSteps[0] <= frame.frame_index && frame.frame_index < s.sourceSteps[1])!;
      const where = `episode ${frame.episode_index} frame ${frame.frame_index}`;
      expect(frame.task, where).toBe(record.instruction);
      expect(frame[LEROBOT_LANGUAGE_FEATURES.subtask], where).toBe(step.subtask);
      expect(frame[LEROBOT_LANGUAGE_FEATURES.motionPlan], where).toBe(step.motionPlan);
      expect(frame[LEROBOT_LANGUAGE_FEATURES.actionChunk], where).toBe(formatActionChunk(step.actionChunk));
      const source = trajectory.steps[frame.frame_index]!;
      frame.action.forEach((v, k) => expect(v, `${where} action ${k}`).toBeCloseTo(source.action[k]!, 6));
      frame['observation.state'].forEach((v, k) => expect(v, `${where} state ${k}`).toBeCloseTo(source.state[k]!, 6));
      expect(frame['observation.images.image_0'].shape[0]).toBe(3);
    }

    // The dataset card, as lerobot writes it for the hub: tags, licence and meta/info.json.
    const card = readFileSync(join(outDir, 'README.md'), 'utf8');
    expect(card).toMatch(/^---\n[\s\S]*license: cc-by-4\.0[\s\S]*- LeRobot[\s\S]*- vla-pipelines[\s\S]*---/);
    expect(card).toContain('"codebase_version": "v3.0"');
  }, SLOW);

  it('exports a D_rob dataset (what robot episodes record) without language features, and imports back with the default mapping', async () => {
    const outDir = join(dir, 'export-drob');
    const result = await exportLeRobot(store, lerobot, { datasetUri: simUri, outDir });
    const sim = await readManifest(store, simUri);
    const trajectories = await Promise.all(sim.trajectories.map((t) => readTrajectory(store, simUri, t)));
    expect(result).toMatchObject({ episodes: 2, language: false });
    const loaded = await load(outDir, `local/${sim.name}`);
    expect(Object.keys(loaded.features).filter((f) => f.startsWith('language.'))).toEqual([]);
    for (const frame of loaded.frames) {
      const trajectory = trajectories[frame.episode_index]!;
      expect(frame.task).toBe(trajectory.instruction);
      frame.action.forEach((v, k) => expect(v).toBeCloseTo(trajectory.steps[frame.frame_index]!.action[k]!, 6));
    }

    // And back in with the default mapping: the same instructions, states and actions.
    const back = await importLeRobot(store, lerobot, { source: fileUri(outDir), outUri: fileUri(join(dir, 'round-trip')), name: 'round-trip' });
    expect(back.trajectories.map((t) => [t.instruction, t.steps])).toEqual(trajectories.map((t) => [t.instruction, t.steps.length]));
    for (const [e, entry] of back.trajectories.entries()) {
      const imported = await readTrajectory(store, fileUri(join(dir, 'round-trip')), entry);
      imported.steps.forEach((step, i) => {
        step.action.forEach((v, k) => expect(v).toBeCloseTo(trajectories[e]!.steps[i]!.action[k]!, 6));
        step.state.forEach((v, k) => expect(v).toBeCloseTo(trajectories[e]!.steps[i]!.state[k]!, 6));
      });
    }
  }, SLOW);

  it('refuses an existing output directory and a dataset that is not there, writing nothing', async () => {
    const taken = join(dir, 'taken');
    mkdirSync(taken);
    await expect(exportLeRobot(store, lerobot, { datasetUri: simUri, outDir: taken })).rejects.toThrow(`${taken} already exists; a LeRobot export creates its directory`);
    const nowhere = join(dir, 'nowhere');
    await expect(exportLeRobot(store, lerobot, { datasetUri: fileUri(join(dir, 'missing')), outDir: nowhere })).rejects.toThrow('manifest.json missing');
    expect(existsSync(nowhere)).toBe(false);
  }, SLOW);
});
