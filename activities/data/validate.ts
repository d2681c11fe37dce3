import { DatasetManifest, DLanRecord, DRobTrajectory, joinUri, MANIFEST_FILE, type DatasetKind, type ManifestTrajectory } from '../../data-schemas';
import type { z } from 'zod';
import { getJson, InvalidObjectError } from '../store';
import { sha256HexOfStream } from '../store/checksum';
import { ObjectNotFoundError } from '../store/errors';
import type { ObjectStore } from '../store/types';
import { DLAN_RECORD_EXPECTED, MANIFEST_EXPECTED, TRAJECTORY_EXPECTED, trajectoryContentSha256 } from './dataset-writer';
import { DatasetNotFoundError } from './errors';
import { storedJsonIssues, type ValidationIssue } from './issues';
import { forEachConcurrent } from './pool';

export { formatIssue, type ValidationIssue } from './issues';

export interface ValidationReport {
  /** True when no issue was found. */
  ok: boolean;
  /** The dataset root URI that was checked. */
  dataset: string;
  /** The manifest's dataset name, when the manifest parsed. */
  name?: string;
  /** What the manifest declares (zero when it did not parse). */
  counts: { trajectories: number; steps: number; files: number; bytes: number };
  issues: ValidationIssue[];
}

export interface ValidateOptions {
  /**
   * Store reads in flight at once.
   * @default 16
   */
  concurrency?: number;
}

function compareIssues(a: ValidationIssue, b: ValidationIssue): number {
  const key = (i: ValidationIssue): [string, string, number] => [i.file, i.record ?? '', i.step ?? -1];
  const [fa, ra, sa] = key(a);
  const [fb, rb, sb] = key(b);
  return fa < fb ? -1 : fa > fb ? 1 : ra < rb ? -1 : ra > rb ? 1 : sa - sb;
}

/**
 * Checks a dataset end to end: the manifest parses; every listed file exists with the listed
 * size and sha256; every trajectory record parses, matches its manifest entry, and references
 * only frames the manifest lists. Problems come back as located issues, not exceptions.
 *
 * @throws DatasetNotFoundError when the root has no manifest.json: there is nothing to validate.
 */
export async function validateDataset(store: ObjectStore, rootUri: string, options: ValidateOptions = {}): Promise<ValidationReport> {
  const concurrency = options.concurrency ?? 16;
  const issues: ValidationIssue[] = [];
  const report = (manifest?: DatasetManifest): ValidationReport => {
    issues.sort(compareIssues);
    const out: ValidationReport = {
      ok: issues.length === 0,
      dataset: rootUri,
      counts: manifest?.counts ?? { trajectories: 0, steps: 0, files: 0, bytes: 0 },
      issues,
    };
    if (manifest) out.name = manifest.name;
    return out;
  };

  let manifest: DatasetManifest;
  try {
    manifest = await getJson(store, joinUri(rootUri, MANIFEST_FILE), DatasetManifest, MANIFEST_EXPECTED);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new DatasetNotFoundError(rootUri);
    if (!(err instanceof InvalidObjectError)) throw err;
    issues.push(...storedJsonIssues(err, MANIFEST_FILE));
    return report();
  }

  const missing = new Set<string>();
  await forEachConcurrent(manifest.files, concurrency, async (f) => {
    let actual: { bytes: number; sha256: string };
    try {
      // Streamed, so a multi-gigabyte shard is checked without holding it in memory.
      actual = await sha256HexOfStream(await store.getStream(joinUri(rootUri, f.path)));
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError)) throw err;
      missing.add(f.path);
      issues.push({ file: f.path, message: `listed in ${MANIFEST_FILE} but missing` });
      return;
    }
    if (actual.bytes !== f.bytes) {
      issues.push({ file: f.path, message: `size is ${actual.bytes} bytes, ${MANIFEST_FILE} says ${f.bytes}` });
    } else if (actual.sha256 !== f.sha256) {
      issues.push({ file: f.path, message: `sha256 is ${actual.sha256}, ${MANIFEST_FILE} says ${f.sha256}` });
    }
  });

  const listed = new Map(manifest.files.map((f) => [f.path, f.sha256]));
  await forEachConcurrent(manifest.trajectories, concurrency, async (entry) => {
    // A missing record was reported above; one issue per cause.
    if (missing.has(entry.record)) return;
    issues.push(...(await checkTrajectory(store, rootUri, manifest.kind, entry, listed)));
  });
  return report(manifest);
}

async function checkTrajectory(
  store: ObjectStore,
  rootUri: string,
  kind: DatasetKind,
  entry: ManifestTrajectory,
  /** sha256 of every file the manifest lists, by path. */
  listed: ReadonlyMap<string, string>,
): Promise<ValidationIssue[]> {
  const file = entry.record;
  const record = entry.id;
  /** The record through the store's JSON reader, or why it cannot be read. */
  const read = async <S extends z.ZodType>(schema: S, expected: string): Promise<{ ok: true; value: z.output<S> } | { ok: false; issues: ValidationIssue[] }> => {
    try {
      return { ok: true, value: await getJson(store, joinUri(rootUri, file), schema, expected) };
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return { ok: false, issues: [{ file, record, message: `listed in ${MANIFEST_FILE} but missing` }] };
      if (err instanceof InvalidObjectError) return { ok: false, issues: storedJsonIssues(err, file, record) };
      throw err;
    }
  };
  // D_lan records carry no frames of their own: their key frames live in the source dataset.
  if (kind === 'd_lan') {
    const lan = await read(DLanRecord, DLAN_RECORD_EXPECTED);
    if (!lan.ok) return lan.issues;
    return matchesEntry(file, entry, { id: lan.value.trajectoryId, instruction: lan.value.instruction, steps: lan.value.steps.length });
  }
  const parsed = await read(DRobTrajectory, TRAJECTORY_EXPECTED);
  if (!parsed.ok) return parsed.issues;
  const t = parsed.value;
  const issues = matchesEntry(file, entry, { id: t.id, instruction: t.instruction, steps: t.steps.length });
  for (const step of t.steps) {
    for (const [camera, ref] of Object.entries(step.frames)) {
      if (!listed.has(ref)) issues.push({ file, record, step: step.index, field: `frames.${camera}`, message: `${ref} is not listed in ${MANIFEST_FILE}` });
    }
  }
  // Only when every frame is listed: an unlisted one is reported above, and has no sha256 to hash.
  if (entry.contentSha256 !== undefined && issues.length === 0) {
    const actual = trajectoryContentSha256(t, (path) => listed.get(path));
    if (actual !== entry.contentSha256) {
      issues.push({ file, record, field: 'contentSha256', message: `the recording hashes to ${actual}, ${MANIFEST_FILE} says ${entry.contentSha256}` });
    }
  }
  return issues;
}

/** The record agrees with its manifest entry on id, instruction and step count. */
function matchesEntry(file: string, entry: ManifestTrajectory, t: { id: string; instruction: string; steps: number }): ValidationIssue[] {
  const record = entry.id;
  const issues: ValidationIssue[] = [];
  if (t.id !== entry.id) issues.push({ file, record, field: 'id', message: `record id is ${t.id}, ${MANIFEST_FILE} says ${entry.id}` });
  if (t.instruction !== entry.instruction) {
    issues.push({ file, record, field: 'instruction', message: `record says "${t.instruction}", ${MANIFEST_FILE} says "${entry.instruction}"` });
  }
  if (t.steps !== entry.steps) issues.push({ file, record, field: 'steps', message: `record has ${t.steps} steps, ${MANIFEST_FILE} says ${entry.steps}` });
  return issues;
}
