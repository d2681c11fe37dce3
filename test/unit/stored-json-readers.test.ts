import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetInvalidError, formatIssue, readManifest, readTrajectory, validateDataset } from '../../activities/data';
import { FileStore } from '../../activities/store';
import { BenchmarkLayoutError, ITEMS_FILE, loadBenchmark } from '../../activities/vqa/loaders';
import { MANIFEST_FILE, type DatasetManifest } from '../../data-schemas/manifest';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { simulateSample } from '../helpers/datasets';

// Stored JSON is read through the store's one reader (docs/design.md, "One reader for stored JSON"):
// a bad file's error names the file and what it should hold, and keeps each path's error type.

const dir = mkdtempSync(join(tmpdir(), 'stored-json-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const store = new FileStore();

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

describe('dataset files through the store reader', () => {
  let n = 0;
  let root: string;
  let manifest: DatasetManifest;
  const fresh = async (): Promise<void> => {
    root = fileUri(join(dir, `d${n++}`));
    manifest = await simulateSample(store, root, ['pick up the cup'], 2, 1);
  };
  beforeAll(fresh);

  it('a manifest that is not JSON: DatasetInvalidError naming the file and that it should be a dataset manifest', async () => {
    await fresh();
    await store.put(joinUri(root, MANIFEST_FILE), '{"formatVersion": 1,');
    const err = await rejection(readManifest(store, root));
    expect(err).toBeInstanceOf(DatasetInvalidError);
    expect(err.message).toContain(joinUri(root, MANIFEST_FILE));
    expect(err.message).toContain('not valid JSON (expected a dataset manifest (manifest.json))');
    const report = await validateDataset(store, root);
    expect(report.ok).toBe(false);
    expect(report.issues.map(formatIssue)).toEqual([expect.stringMatching(/^manifest\.json: not valid JSON \(expected a dataset manifest \(manifest\.json\)\): /)]);
  });

  it('a trajectory record that is not JSON: one located issue saying what it should be; readTrajectory a DatasetInvalidError', async () => {
    await fresh();
    const entry = manifest.trajectories[0]!;
    await store.put(joinUri(root, entry.record), '{"id": ');
    const report = await validateDataset(store, root);
    const issue = report.issues.find((i) => i.file === entry.record && i.record === entry.id && i.message.startsWith('not valid JSON'));
    expect(issue?.message).toMatch(/^not valid JSON \(expected a D_rob trajectory\): /);
    const err = await rejection(readTrajectory(store, root, entry));
    expect(err).toBeInstanceOf(DatasetInvalidError);
    expect(err.message).toContain(`${joinUri(root, entry.record)}: not valid JSON (expected a D_rob trajectory)`);
  });

  it('a record that parses but breaks the schema keeps its located issues (step, field, what was found)', async () => {
    await fresh();
    const entry = manifest.trajectories[0]!;
    const record = JSON.parse((await store.get(joinUri(root, entry.record))).toString()) as { steps: { action: number[] }[] };
    record.steps[1]!.action.pop();
    await store.put(joinUri(root, entry.record), JSON.stringify(record));
    const lines = (await validateDataset(store, root)).issues.map(formatIssue);
    expect(lines).toContain(`${entry.record}: record ${entry.id} step 1 field action: expected 7 numbers, got 6`);
    const err = await rejection(readTrajectory(store, root, entry));
    expect(err).toBeInstanceOf(DatasetInvalidError);
    expect(err.message).toContain(`${joinUri(root, entry.record)} is not a D_rob trajectory:`);
    expect(err.message).toContain(`${entry.record}: record ${entry.id} step 1 field action: expected 7 numbers, got 6`);
  });
});

describe('benchmark items.jsonl through the store reader', () => {
  it('a line that is not JSON: BenchmarkLayoutError naming the file, the line and what it should be', async () => {
    const root = join(dir, 'vqa-broken');
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, ITEMS_FILE), '{"id": "b",\n');
    const err = await rejection(loadBenchmark(store, 'mme', fileUri(root)));
    expect(err).toBeInstanceOf(BenchmarkLayoutError);
    expect(err.message).toMatch(/items\.jsonl line 1: not valid JSON \(expected a benchmark item \(one line of items\.jsonl\)\)/);
  });
});
