import { z } from 'zod';
import { parseObjectUri } from './uri';

/**
 * The refusal where workers run on several hosts (VLA_MULTI_HOST=1): a `file://` URI names a
 * folder on one machine, which the other hosts cannot see.
 */
export const MULTI_HOST_NEEDS_S3 = 'workers on several hosts need an s3:// store';

/** Every `file://` string in a workflow input (any depth), for the multi-host refusal. */
export function fileUrisIn(value: unknown): string[] {
  if (typeof value === 'string') return value.startsWith('file://') ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(fileUrisIn);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(fileUrisIn);
  return [];
}

/** Comma- or whitespace-separated object URIs; an empty value is an empty list. */
const UriList = z
  .string()
  .transform((text) => text.split(/[\s,]+/).filter((uri) => uri !== ''))
  .superRefine((uris, ctx) => {
    for (const uri of uris) {
      try {
        parseObjectUri(uri);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : `${uri}: not an object URI` });
      }
    }
  });

/**
 * Environment variables the project reads, with their defaults. `infra/config.ts` fills the
 * defaults that depend on the machine (home and state folders).
 */
export const EnvConfig = z.object({
  /** State folder of the local stack: Temporal's SQLite db, logs, PID files, the default store. */
  VLA_STATE_DIR: z.string().min(1).optional(),
  /** Cache outside the clone: built binaries, Python virtual environments. */
  VLA_CACHE_DIR: z.string().min(1).optional(),
  /** Object-store root for outputs, `file:///...` (default: `<state>/store`) or `s3://bucket/prefix`. */
  VLA_STORE_URI: z.string().min(1).optional(),
  /**
   * Store roots the workers may read and write, `file:///dir` or `s3://bucket[/prefix]`, comma- or
   * whitespace-separated (default: VLA_STORE_URI). A URI outside every root is refused.
   */
  VLA_STORE_ROOTS: UriList.optional(),
  /** Store roots the workers may only read (default: the repository's bundled `data/samples`). */
  VLA_STORE_READ_ROOTS: UriList.optional(),
  // The Temporal connection (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*, TEMPORAL_API_KEY,
  // TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE) is read by @temporalio/envconfig, as the Temporal CLI
  // reads it: infra/temporal-connection.ts.
  /** Port of the Temporal Web UI started by `vla dev up`. */
  VLA_TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),
  /** GPU workers: local scratch for staged shards and running trainers (default: `<state>/gpu-work`). */
  VLA_WORK_DIR: z.string().min(1).optional(),
  /** GPU workers: most local inference models loaded at once (each holds its weights in GPU memory). */
  VLA_INFERENCE_MAX_RESIDENT: z.coerce.number().int().min(1).default(1),
  /** GPU workers: a loaded inference model left idle this long is released. */
  VLA_INFERENCE_IDLE_SECONDS: z.coerce.number().int().min(0).default(120),
  /**
   * Workers: where to serve Prometheus metrics (`IP:port`; the SDK's own and the pipelines'),
   * scraped at `http://<host:port>/metrics`. Unset: no metrics endpoint.
   */
  VLA_METRICS_ADDRESS: z
    .string()
    // The SDK's runtime binds a socket address: an IP, not a host name.
    .refine((value) => {
      const match = /^(?:\[([0-9a-fA-F:]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(value);
      if (match === null) return false;
      const ip = match[1] ?? match[2] ?? '';
      const port = Number(match[3]);
      const ok = (match[1] !== undefined ? z.ipv6() : z.ipv4()).safeParse(ip).success;
      return ok && port >= 1 && port <= 65535;
    }, 'IP:port, e.g. 127.0.0.1:9464 or 0.0.0.0:9464 or [::1]:9464 (the SDK binds an address, not a host name)')
    .optional(),
  /**
   * `1` where workers run on several hosts (the cluster profile, Kubernetes, Slurm): a `file://`
   * store is local to one host, so it is refused; only `s3://` stores are shared.
   */
  VLA_MULTI_HOST: z.enum(['0', '1']).default('0').transform((flag) => flag === '1'),
  /**
   * Workers and the CLI: an OpenTelemetry collector's OTLP/HTTP endpoint (the standard variable,
   * e.g. `http://127.0.0.1:4318`; spans go to `<endpoint>/v1/traces`). Unset: no tracing.
   */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().min(1).optional(),
  /** The service name of exported spans (default: `vla-worker-<kind>`, `vla-cli`). */
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  /** A `temporal` CLI to use instead of looking on PATH or building one. */
  TEMPORAL_CLI_PATH: z.string().min(1).optional(),
});
export type EnvConfig = z.infer<typeof EnvConfig>;
