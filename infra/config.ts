import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeRoots, isInsideRoots, validateStoreRoots, type StoreRoots } from '../activities/store/roots';
import { EnvConfig, MULTI_HOST_NEEDS_S3 } from '../data-schemas/config';
import { fileUri } from '../data-schemas/uri';
import { loadTemporalConnection, type TemporalConnectionSettings } from './temporal-connection';
import { formatZodIssues } from '../data-schemas/issues';

/** The repository root (this file lives in `<root>/infra`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The bundled real BridgeData v2 episodes (RLDS TFRecord), shipped with the clone. */
export const BRIDGE_SAMPLE = join(REPO_ROOT, 'data', 'samples', 'bridge-debug', 'bridge_dataset-train.tfrecord-00000-of-00001');

export interface ResolvedConfig {
  env: EnvConfig;
  stateDir: string;
  cacheDir: string;
  storeUri: string;
  /** What workers' stores may touch (docs/design.md, "The store confines every URI"). */
  storeRoots: StoreRoots;
  /**
   * The Temporal connection from the same environment (envconfig: config file, profile, TEMPORAL_*),
   * loaded on first use so that commands which never talk to Temporal ignore a bad profile.
   */
  temporal: () => TemporalConnectionSettings;
  uiPort: number;
}

/** Reads the project's environment variables once, naming any bad one. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  const parsed = EnvConfig.safeParse(env);
  if (!parsed.success) {
    throw new Error(`invalid environment configuration:\n${formatZodIssues(parsed.error).map((line) => `  ${line}`).join('\n')}`);
  }
  const cfg = parsed.data;
  const stateDir = resolve(cfg.VLA_STATE_DIR ?? join(REPO_ROOT, '.vla'));
  const storeUri = cfg.VLA_STORE_URI ?? fileUri(join(stateDir, 'store'));
  const storeRoots: StoreRoots = {
    readWrite: cfg.VLA_STORE_ROOTS ?? [storeUri],
    // The demo's VQA sweep reads the bundled benchmark items where the clone keeps them; on several
    // hosts only s3:// is shared, so there is no file:// default.
    readOnly: cfg.VLA_STORE_READ_ROOTS ?? (cfg.VLA_MULTI_HOST ? [] : [fileUri(join(REPO_ROOT, 'data', 'samples'))]),
  };
  try {
    validateStoreRoots(storeRoots);
  } catch (err) {
    throw new Error(`invalid environment configuration:\n  VLA_STORE_ROOTS (default VLA_STORE_URI) / VLA_STORE_READ_ROOTS: ${err instanceof Error ? err.message : String(err)}`);
  }
  // Every output goes under the store URI, so a worker that could not write there could do nothing.
  if (!isInsideRoots(`${storeUri.replace(/\/+$/, '')}/`, storeRoots.readWrite)) {
    throw new Error(`invalid environment configuration:\n  VLA_STORE_URI: ${storeUri} is not under a read-write store root; ${describeRoots(storeRoots)}`);
  }
  let temporal: TemporalConnectionSettings | undefined;
  return {
    env: cfg,
    stateDir,
    cacheDir: resolve(cfg.VLA_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'vla-pipelines')),
    storeUri,
    storeRoots,
    temporal: () => (temporal ??= loadTemporalConnection({ env })),
    uiPort: cfg.VLA_TEMPORAL_UI_PORT,
  };
}

/**
 * Where workers run on several hosts (VLA_MULTI_HOST=1), a worker refuses to start with a
 * `file://` store URI or root: another host could not see that folder.
 * @throws Error naming each local setting
 */
export function refuseLocalStore(config: ResolvedConfig): void {
  if (!config.env.VLA_MULTI_HOST) return;
  const local = [
    ...(config.storeUri.startsWith('file://') ? [`VLA_STORE_URI=${config.storeUri}${config.env.VLA_STORE_URI === undefined ? ' (the default)' : ''}`] : []),
    // Unset, the read-write roots are the store URI, already named.
    ...(config.env.VLA_STORE_ROOTS ?? []).filter((uri) => uri.startsWith('file://')).map((uri) => `VLA_STORE_ROOTS: ${uri}`),
    ...config.storeRoots.readOnly.filter((uri) => uri.startsWith('file://')).map((uri) => `VLA_STORE_READ_ROOTS: ${uri}`),
  ];
  if (local.length > 0) throw new Error(`${MULTI_HOST_NEEDS_S3} (VLA_MULTI_HOST=1), but ${local.join('; ')}; set VLA_STORE_URI=s3://bucket/prefix`);
}
