import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The first executable called `name` on PATH, if any. */
export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Builds a Go command once into `binDir` with `go install` and returns its path. The binary lives
 * in the cache outside the clone, keyed by version, so CI and the next run reuse it.
 */
export async function goInstall(modulePath: string, binDir: string, binary: string, log: (line: string) => void): Promise<string> {
  const target = join(binDir, binary);
  if (existsSync(target)) return target;
  const go = findOnPath('go') ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) throw new Error(`cannot build ${binary}: Go is not installed (needed once for: go install ${modulePath})`);
  mkdirSync(binDir, { recursive: true });
  log(`building ${binary} once with: go install ${modulePath} (a few minutes; cached in ${binDir})`);
  const started = Date.now();
  try {
    await run(go, ['install', modulePath], { env: { ...process.env, GOBIN: binDir }, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? String(err);
    throw new Error(`go install ${modulePath} failed:\n${stderr.split('\n').slice(-20).join('\n')}`);
  }
  log(`built ${binary} in ${Math.round((Date.now() - started) / 1000)} s`);
  return target;
}

/** A Go command the project runs: found by its variable or on PATH, else built once. */
export interface GoTool {
  binary: string;
  /** Environment variable naming a binary to use instead. */
  envVar: string;
  module: string;
  version: string;
  /**
   * Whether a `binary` found on PATH will do. Off for generically named binaries (the Temporal
   * server's is `server`), which could be anything. @default true
   */
  lookOnPath?: boolean;
}

/**
 * The tool's binary: `$envVar`, else `binary` on PATH (unless `lookOnPath` is false), else the copy built once with `go install`
 * into `<cacheDir>/bin/<binary>-<version>/`.
 */
export async function ensureGoTool(tool: GoTool, cacheDir: string, log: (line: string) => void): Promise<string> {
  const fromEnv = process.env[tool.envVar];
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`${tool.envVar}=${fromEnv} does not exist`);
    return fromEnv;
  }
  const onPath = tool.lookOnPath === false ? undefined : findOnPath(tool.binary);
  return onPath ?? goInstall(`${tool.module}@${tool.version}`, join(cacheDir, 'bin', `${tool.binary}-${tool.version}`), tool.binary, log);
}
