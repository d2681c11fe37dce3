import { z } from 'zod';
import { IsoDateTime, RelativeRef, SafeId, Sha256Hex } from './common';

/**
 * A dataset is a prefix in the object store holding `manifest.json` plus the files it lists.
 * The manifest is written last, with create-if-absent: a dataset without one is incomplete and
 * no reader treats it as done.
 */
export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT_VERSION = 1;

export const DatasetKind = z.enum(['d_rob', 'd_lan']);
export type DatasetKind = z.infer<typeof DatasetKind>;

export const ManifestFile = z.strictObject({
  path: RelativeRef,
  sha256: Sha256Hex,
  bytes: z.int().nonnegative(),
});
export type ManifestFile = z.infer<typeof ManifestFile>;

export const ManifestTrajectory = z.strictObject({
  id: SafeId,
  /** The trajectory record, relative to the dataset root. */
  record: RelativeRef,
  instruction: z.string().min(1),
  steps: z.int().positive(),
  /**
   * sha256 of the recording (states, actions, frame bytes; not the instruction, id or source):
   * what datasets dedupe on and what the train/validation split hashes. Absent in manifests
   * written before it existed; the shard planner then computes it from the record.
   */
  contentSha256: Sha256Hex.optional(),
});
export type ManifestTrajectory = z.infer<typeof ManifestTrajectory>;

export const DatasetManifest = z
  .strictObject({
    formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
    kind: DatasetKind,
    name: SafeId,
    createdAt: IsoDateTime,
    /** Free-form provenance: what produced this dataset and from what. */
    source: z.strictObject({
      producer: z.string().min(1),
      producerVersion: z.string().min(1),
      inputs: z.array(z.string()).default([]),
      license: z.string().optional(),
    }),
    counts: z.strictObject({
      trajectories: z.int().nonnegative(),
      steps: z.int().nonnegative(),
      files: z.int().nonnegative(),
      bytes: z.int().nonnegative(),
    }),
    trajectories: z.array(ManifestTrajectory),
    files: z.array(ManifestFile),
  })
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    m.trajectories.forEach((t, i) => {
      if (seen.has(t.id)) ctx.addIssue({ code: 'custom', path: ['trajectories', i, 'id'], message: `duplicate trajectory id ${t.id}` });
      seen.add(t.id);
    });
    const paths = new Set(m.files.map((f) => f.path));
    if (paths.size !== m.files.length) ctx.addIssue({ code: 'custom', path: ['files'], message: 'duplicate file paths' });
    m.trajectories.forEach((t, i) => {
      if (!paths.has(t.record)) ctx.addIssue({ code: 'custom', path: ['trajectories', i, 'record'], message: `record ${t.record} is not listed in files` });
    });
    const expect = {
      trajectories: m.trajectories.length,
      steps: m.trajectories.reduce((n, t) => n + t.steps, 0),
      files: m.files.length,
      bytes: m.files.reduce((n, f) => n + f.bytes, 0),
    };
    for (const key of Object.keys(expect) as (keyof typeof expect)[]) {
      if (m.counts[key] !== expect[key]) {
        ctx.addIssue({ code: 'custom', path: ['counts', key], message: `counts.${key} is ${m.counts[key]} but the lists give ${expect[key]}` });
      }
    }
  });
export type DatasetManifest = z.infer<typeof DatasetManifest>;
