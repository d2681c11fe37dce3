import { z } from 'zod';

/** Identifier safe as one object-store key segment and as part of a Temporal workflow id. */
export const SafeId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ - and start with a letter or digit');
export type SafeId = z.infer<typeof SafeId>;

/** Absolute object URI: `file:///abs/path` (embedded default) or `s3://bucket/key`. */
export const ObjectUri = z
  .string()
  .regex(/^(file:\/\/\/[^\0]*|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[^\0]*)?)$/, 'must be file:///absolute/path or s3://bucket/key');
export type ObjectUri = z.infer<typeof ObjectUri>;

/**
 * A path relative to a dataset root (a relative URI reference), so a dataset can be copied between
 * the filesystem and S3 without rewriting its records.
 */
export const RelativeRef = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.includes('\\') && !p.split('/').some((s) => s === '..' || s === '.' || s === ''), {
    message: 'must be a relative path without empty, "." or ".." segments',
  });
export type RelativeRef = z.infer<typeof RelativeRef>;

export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256');

export const IsoDateTime = z.iso.datetime({ offset: true });

/** A finite float; JSON cannot carry NaN or Infinity and neither should our records. */
export const Finite = z.number().refine(Number.isFinite, 'must be a finite number');
