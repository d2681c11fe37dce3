import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readManifest, readTrajectory, validateDataset } from '../../activities/data';
import { importLeRobot, readLeRobotInfo, resolveLeRobotMapping } from '../../activities/data/lerobot-import';
import type { PythonEnv } from '../../activities/runtime/python-env';
import { createObjectStore, S3Store } from '../../activities/store';
import type { DRobTrajectory } from '../../data-schemas/d-rob';
import { fileUri, joinUri } from '../../data-schemas/uri';
import type { relabelDataset, shardDataset } from '../../workflows';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { ensureLeRobotEnv } from '../../infra/python';
import { simulateSample } from '../helpers/datasets';
import { connectTestTemporal, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';

const run = promisify(execFile);
const WRITE_DATASET = join(REPO_ROOT, 'test/fixtures/lerobot/write_dataset.py');
const STEPS = 12;
// Each import starts lerobot (torch) in a child: tens of seconds on a loaded 2-core machine.
const SLOW = 5 * 60_000;

const s3 = inject('s3');
const s3Options = { endpoint: s3.endpoint, region: s3.region, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } };

/** Width and height from a PNG's IHDR chunk. */
function pngSize(bytes: Buffer): [number, number] {
  expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

describe('LeRobot datasets in (datasets written by the real lerobot package, real dev server)', () => {
  const store = createObjectStore({ roots: 'unconfined', s3: s3Options });
  const s3store = new S3Store(s3Options);
  let lerobot: PythonEnv;
  let env: TemporalTestEnv;
  let dir: string;
  let simUri: string;
  let endEffectorDir: string;
  let jointSpaceDir: string;

  async function writeLeRobot(out: string, ...flags: string[]): Promise<void> {
    await run(lerobot.python, [WRITE_DATASET, '--drob', join(dir, 'sim'), '--out', out, '--max-steps', String(STEPS), ...flags], { env: lerobot.env });
  }

  beforeAll(async () => {
    // Built by `infra/setup.sh --for-tests`; when this file runs alone the first time, built here (minutes).
    lerobot = await ensureLeRobotEnv(loadConfig().cacheDir);
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-lerobot-'));
    simUri = fileUri(join(dir, 'sim'));
    await simulateSample(store, simUri, ['put the carrot on the plate', 'pick up the eggplant'], 1, 0);
    endEffectorDir = join(dir, 'lerobot-ee');
    jointSpaceDir = join(dir, 'lerobot-joints');
    await Promise.all([writeLeRobot(endEffectorDir), writeLeRobot(jointSpaceDir, '--joint-space')]);
  }, 20 * 60_000);
  afterAll(async () => {
    await env?.close();
    s3store.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function simTrajectories(): Promise<Map<string, DRobTrajectory>> {
    const manifest = await readManifest(store, simUri);
    const out = new Map<string, DRobTrajectory>();
    for (const entry of manifest.trajectories) out.set(entry.instruction, await readTrajectory(store, simUri, entry));
    return out;
  }

  it('imports its episodes (tasks, actions, states, decoded frames), validates, relabels with the heuristic labeler and shards', async () => {
    const outUri = fileUri(join(dir, 'imported'));
    const manifest = await importLeRobot(store, lerobot, { source: fileUri(endEffectorDir), outUri, name: 'lerobot-sim' });
    expect(manifest.counts.trajectories).toBe(2);
    expect(manifest.counts.steps).toBe(2 * STEPS);
    expect(manifest.source).toMatchObject({ producer: 'vla-pipelines/lerobot-import', inputs: [fileUri(endEffectorDir)] });
    const report = await validateDataset(store, outUri);
    expect(report.issues).toEqual([]);
    expect(report.ok).toBe(true);

    const info = await readLeRobotInfo(lerobot, endEffectorDir);
    const [height, width] = info.features['observation.images.main']!.shape;
    const sim = await simTrajectories();
    for (const entry of manifest.trajectories) {
      const t = await readTrajectory(store, outUri, entry);
      const original = sim.get(t.instruction);
      expect(original, t.instruction).toBeDefined();
      expect(t.id).toMatch(/^lerobot-[0-9a-f]{16}$/);
      expect(t).toMatchObject({ robot: 'widowx', controlHz: 5, cameras: ['image_0'], source: { kind: 'lerobot', codebaseVersion: 'v3.0' } });
      expect(t.steps).toHaveLength(STEPS);
      t.steps.forEach((step, i) => {
        const source = original!.steps[i]!;
        // Stored as float32 by lerobot: equal to about 7 significant digits.
        step.action.forEach((v, k) => expect(v, `step ${i} action ${k}`).toBeCloseTo(source.action[k]!, 6));
        step.state.forEach((v, k) => expect(v, `step ${i} state ${k}`).toBeCloseTo(source.state[k]!, 6));
        expect(step.isFirst).toBe(i === 0);
        expect(step.isLast).toBe(i === STEPS - 1);
      });
      // The frames are the video lerobot encoded, decoded by lerobot: PNG of the recorded size, one per step.
      for (const step of t.steps) expect(pngSize(await store.get(joinUri(outUri, step.frames.image_0!)))).toEqual([width, height]);
    }

    await withCpuWorker(env, store, 'lerobot', async (taskQueue) => {
      const relabel = await env.client.workflow.execute<typeof relabelDataset>('relabelDataset', { taskQueue, workflowId: `${taskQueue}-relabel`, args: [{ datasetUri: outUri }] });
      expect(relabel.counts).toMatchObject({ total: 2, done: 2, quarantined: 0, failed: 0 });
      const shards = await env.client.workflow.execute<typeof shardDataset>('shardDataset', {
        taskQueue,
        workflowId: `${taskQueue}-shard`,
        args: [{ datasetUri: relabel.outputUri, validationFraction: 0.5, seed: 1 }],
      });
      expect(shards.shards).toBeGreaterThan(0);
      expect(shards.written).toBe(shards.shards);
    });
  }, SLOW);

  it('reads the same dataset from an s3:// prefix through the store: the same trajectories', async () => {
    const prefix = `s3://${s3.bucket}/lerobot-${randomUUID().slice(0, 8)}/dataset`;
    const files = (readdirSync(endEffectorDir, { recursive: true }) as string[]).filter((p) => statSync(join(endEffectorDir, p)).isFile());
    for (const file of files) await store.put(joinUri(prefix, relative(endEffectorDir, join(endEffectorDir, file))), readFileSync(join(endEffectorDir, file)));
    const fromS3 = await importLeRobot(store, lerobot, { source: prefix, outUri: `${prefix}-drob`, name: 'lerobot-sim-s3', limit: 1 });
    const local = await importLeRobot(store, lerobot, { source: fileUri(endEffectorDir), outUri: fileUri(join(dir, 'local-1')), name: 'lerobot-sim', limit: 1 });
    expect(fromS3.trajectories.map((t) => [t.id, t.contentSha256])).toEqual(local.trajectories.map((t) => [t.id, t.contentSha256]));
    expect((await validateDataset(store, `${prefix}-drob`)).ok).toBe(true);
  }, SLOW);

  it('applies a mapping: units, axis signs, an inverted gripper and named columns', async () => {
    const outUri = fileUri(join(dir, 'mapped'));
    const mapping = {
      action: { feature: 'action', x: 'x', y: 'y', z: 'z', gripper: 6 },
      translationUnit: 'cm' as const,
      axisSigns: { x: 1 as const, y: -1 as const, z: 1 as const },
      gripper: { open: 0, closed: 1 },
    };
    const manifest = await importLeRobot(store, lerobot, { source: fileUri(endEffectorDir), outUri, name: 'mapped', mapping, limit: 1 });
    const t = await readTrajectory(store, outUri, manifest.trajectories[0]!);
    const original = (await simTrajectories()).get(t.instruction)!;
    t.steps.forEach((step, i) => {
      const a = original.steps[i]!.action;
      expect(step.action[0]).toBeCloseTo(a[0] * 0.01, 7);
      expect(step.action[1]).toBeCloseTo(-a[1] * 0.01, 7);
      // No rotation columns named: read as 0.
      expect(step.action.slice(3, 6)).toEqual([0, 0, 0]);
      expect(step.action[6]).toBeCloseTo(1 - a[6], 6);
    });
  }, SLOW);

  it('refuses a joint-space dataset before decoding anything, naming the joint columns, and writes nothing', async () => {
    const outUri = fileUri(join(dir, 'joints-imported'));
    await expect(importLeRobot(store, lerobot, { source: fileUri(jointSpaceDir), outUri, name: 'joints' })).rejects.toThrow(
      /feature "action" cannot be mapped to the action: its columns look like joint positions \(shoulder_pan\.pos, .*gripper\.pos\)/,
    );
    expect(await store.head(joinUri(outUri, 'manifest.json'))).toBeUndefined();
  }, SLOW);

  it('refuses a mapping it cannot establish, naming the feature, column or field', async () => {
    const info = await readLeRobotInfo(lerobot, endEffectorDir);
    expect(info).toMatchObject({ codebaseVersion: 'v3.0', fps: 5, robotType: 'widowx', totalEpisodes: 2, totalFrames: 2 * STEPS });
    expect(() => resolveLeRobotMapping(info, 'ds', { action: { feature: 'action', x: 'dx', y: 1, z: 2, gripper: 6 } })).toThrow(
      'ds: the mapping\'s "action".x: feature "action" has no column named "dx" (names: x, y, z, roll, pitch, yaw, gripper)',
    );
    expect(() => resolveLeRobotMapping(info, 'ds', { state: { feature: 'observation.velocity', x: 0, y: 1, z: 2, gripper: 6 } })).toThrow(
      'ds: no feature "observation.velocity" for the state (vector features: action, observation.state); name it in the mapping\'s "state".feature',
    );
    expect(() => resolveLeRobotMapping(info, 'ds', { action: { feature: 'action', x: 0, y: 1, z: 9, gripper: 6 } })).toThrow(
      'ds: the mapping\'s "action".z: column 9 is out of range; feature "action" has 7 columns',
    );
    expect(() => resolveLeRobotMapping(info, 'ds', { gripper: { open: 1, closed: 1 } })).toThrow(/ds: invalid mapping: .*gripper.*open and closed must differ/);
    expect(() => resolveLeRobotMapping(info, 'ds', { cameras: { 'observation.state': 'image_0' } })).toThrow(
      'ds: the mapping\'s "cameras": "observation.state" is not an image or video feature',
    );
    // A gripper range that the recorded values do not fit is refused at the first frame outside it.
    const outUri = fileUri(join(dir, 'bad-gripper'));
    await expect(importLeRobot(store, lerobot, { source: fileUri(endEffectorDir), outUri, name: 'bad', mapping: { gripper: { open: 0.5, closed: 0 } }, limit: 1 })).rejects.toThrow(
      /episode 0 frame \d+: feature "action" gripper column 6: value 1 lies outside closed 0 \.\. open 0\.5; set the mapping's "gripper"/,
    );
    expect(await store.head(joinUri(outUri, 'manifest.json'))).toBeUndefined();
  }, SLOW);

  it('refuses a v2.1 dataset (lerobot cannot read it) and a folder that is no LeRobot dataset, with one line each', async () => {
    // The v3.0 dataset relabelled v2.1 in its meta/info.json: lerobot itself refuses to load it.
    const older = join(dir, 'lerobot-v21');
    cpSync(endEffectorDir, older, { recursive: true });
    const infoFile = join(older, 'meta', 'info.json');
    writeFileSync(infoFile, readFileSync(infoFile, 'utf8').replace('"codebase_version": "v3.0"', '"codebase_version": "v2.1"'));
    await expect(importLeRobot(store, lerobot, { source: fileUri(older), outUri: fileUri(join(dir, 'v21-imported')), name: 'v21' })).rejects.toThrow(
      `${fileUri(older)}: LeRobot format v2.1 is not supported (lerobot 0.6.1 reads v3.0); convert it first with lerobot's \`python -m lerobot.scripts.convert_dataset_v21_to_v30\``,
    );
    await expect(importLeRobot(store, lerobot, { source: fileUri(join(dir, 'sim')), outUri: fileUri(join(dir, 'not-imported')), name: 'no' })).rejects.toThrow(
      `${fileUri(join(dir, 'sim'))}: not a LeRobot dataset (meta/info.json missing)`,
    );
  }, SLOW);
});
