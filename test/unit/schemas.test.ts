import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  Action7,
  ActionChunk,
  Camera,
  DLanRecord,
  DRobTrajectory,
  DatasetManifest,
  ObjectUri,
  StoreSmokeInput,
  joinUri,
  parseObjectUri,
  relativeTo,
} from '../../data-schemas';
import { PUBLISHED_SCHEMAS, jsonSchemaOf } from '../../data-schemas/json-schema';
import { REPO_ROOT } from '../../infra/config';

describe('inferred types are locked', () => {
  it('D_rob', () => {
    expectTypeOf<Action7>().toEqualTypeOf<[number, number, number, number, number, number, number]>();
    expectTypeOf<Camera>().toEqualTypeOf<'image_0' | 'image_1' | 'image_2' | 'image_3'>();
    expectTypeOf<DRobTrajectory['steps'][number]['frames']>().toEqualTypeOf<Partial<Record<Camera, string>>>();
    expectTypeOf<DRobTrajectory['source']['kind']>().toEqualTypeOf<'bridge_rlds' | 'simulator' | 'lerobot' | 'robot_episode'>();
  });
  it('D_lan', () => {
    expectTypeOf<ActionChunk>().toEqualTypeOf<[number, number, number, number][]>();
    expectTypeOf<DLanRecord['labeler']['name']>().toEqualTypeOf<'heuristic' | 'gemini' | 'policy'>();
    expectTypeOf<DLanRecord['steps'][number]['sourceSteps']>().toEqualTypeOf<[number, number]>();
  });
  it('manifest and workflow inputs', () => {
    expectTypeOf<DatasetManifest['kind']>().toEqualTypeOf<'d_rob' | 'd_lan'>();
    expectTypeOf<DatasetManifest['files'][number]>().toEqualTypeOf<{ path: string; sha256: string; bytes: number }>();
    expectTypeOf<StoreSmokeInput>().toEqualTypeOf<{ outputUri: string; text: string }>();
  });
});

const step = (index: number, action: number[] = [0.01, 0, 0, 0, 0, 0, 1]) => ({
  index,
  frames: { image_0: `frames/t/image_0/${String(index).padStart(3, '0')}.jpg` },
  state: [0.3, 0, 0.1, 0, 0, 0, 1],
  action,
  isFirst: index === 0,
  isLast: false,
  isTerminal: false,
});
const trajectory = (steps = [step(0), step(1)]) => ({
  formatVersion: 1,
  id: 'traj-1',
  instruction: 'put carrot on plate',
  robot: 'widowx_250s',
  controlHz: 5,
  cameras: ['image_0'],
  steps,
  source: { kind: 'simulator', simulatorVersion: '1', task: 'put carrot on plate', seed: 0, episodeIndex: 0, success: true },
});

describe('D_rob trajectory', () => {
  it('accepts a Bridge-convention trajectory', () => {
    expect(DRobTrajectory.safeParse(trajectory()).success).toBe(true);
  });
  it('rejects a 6-D action, naming the step and field', () => {
    const r = DRobTrajectory.safeParse(trajectory([step(0), step(1, [0, 0, 0, 0, 0, 1])]));
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['steps', 1, 'action']);
  });
  it('rejects a gripper outside [0, 1], an unknown camera, steps out of order, NaN', () => {
    expect(DRobTrajectory.safeParse(trajectory([step(0, [0, 0, 0, 0, 0, 0, 1.5])])).success).toBe(false);
    const badCam = trajectory();
    (badCam.steps[0]!.frames as Record<string, string>).image_9 = 'frames/x.jpg';
    expect(DRobTrajectory.safeParse(badCam).success).toBe(false);
    const unlisted = trajectory();
    (unlisted.steps[0]!.frames as Record<string, string>).image_3 = 'frames/x.jpg';
    expect(DRobTrajectory.safeParse(unlisted).error?.issues[0]?.message).toContain('image_3 is not listed');
    expect(DRobTrajectory.safeParse(trajectory([step(1)])).success).toBe(false);
    expect(DRobTrajectory.safeParse(trajectory([step(0, [NaN, 0, 0, 0, 0, 0, 1])])).success).toBe(false);
  });
  it('rejects frame paths that escape the dataset root', () => {
    const escape = trajectory();
    escape.steps[0]!.frames.image_0 = '../../etc/passwd';
    expect(DRobTrajectory.safeParse(escape).success).toBe(false);
  });
});

describe('dataset manifest', () => {
  const manifest = {
    formatVersion: 1,
    kind: 'd_rob',
    name: 'demo',
    createdAt: '2026-11-22T00:00:00Z',
    source: { producer: 'test', producerVersion: '1', inputs: [] },
    counts: { trajectories: 1, steps: 2, files: 1, bytes: 10 },
    trajectories: [{ id: 'traj-1', record: 'trajectories/traj-1.json', instruction: 'x', steps: 2 }],
    files: [{ path: 'trajectories/traj-1.json', sha256: 'a'.repeat(64), bytes: 10 }],
  };
  it('accepts consistent counts and rejects inconsistent ones', () => {
    expect(DatasetManifest.safeParse(manifest).success).toBe(true);
    const r = DatasetManifest.safeParse({ ...manifest, counts: { ...manifest.counts, steps: 3 } });
    expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual(['counts.steps']);
  });
  it('rejects a trajectory whose record is not a listed file', () => {
    const r = DatasetManifest.safeParse({ ...manifest, files: [], counts: { ...manifest.counts, files: 0, bytes: 0 } });
    expect(r.error?.issues[0]?.path).toEqual(['trajectories', 0, 'record']);
  });
});

describe('D_lan record', () => {
  it('parses chunks as [[dx, dy, dz, gripper], ...] and rejects 3-wide ones', () => {
    expect(ActionChunk.safeParse([[0.025, 0, -0.05, 1], [0, 0, 0, 0]]).success).toBe(true);
    expect(ActionChunk.safeParse([[0.025, 0, -0.05]]).success).toBe(false);
    expect(ActionChunk.safeParse([]).success).toBe(false);
  });
});

describe('object URIs', () => {
  it('parses file and s3 URIs and rejects others', () => {
    expect(parseObjectUri('file:///tmp/a%20b/c.json')).toEqual({ scheme: 'file', path: '/tmp/a b/c.json' });
    expect(parseObjectUri('s3://vla-data/datasets/x/manifest.json')).toEqual({ scheme: 's3', bucket: 'vla-data', key: 'datasets/x/manifest.json' });
    expect(() => parseObjectUri('file://relative/path')).toThrow(/absolute path/);
    expect(() => parseObjectUri('gs://bucket/key')).toThrow(/expected file/);
    expect(() => parseObjectUri('s3://B/key')).toThrow(/bucket name/);
    expect(ObjectUri.safeParse('http://x').success).toBe(false);
  });
  it('joins and relativises', () => {
    expect(joinUri('s3://bkt/root/', '/datasets/', 'a.json')).toBe('s3://bkt/root/datasets/a.json');
    expect(relativeTo('file:///data/ds', 'file:///data/ds/frames/1.jpg')).toBe('frames/1.jpg');
    expect(relativeTo('file:///data/ds', 'file:///data/dsx/1.jpg')).toBeUndefined();
  });
});

describe('JSON Schema export', () => {
  it('docs/schemas is up to date with the zod schemas (run `npm run schemas`)', () => {
    for (const name of Object.keys(PUBLISHED_SCHEMAS) as (keyof typeof PUBLISHED_SCHEMAS)[]) {
      const onDisk = readFileSync(join(REPO_ROOT, 'docs', 'schemas', `${name}.schema.json`), 'utf8');
      expect(onDisk, name).toBe(jsonSchemaOf(name));
    }
  });
});
