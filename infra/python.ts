import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PythonEnv } from '../activities/runtime/python-env';
import { REPO_ROOT } from './config';
import { findOnPath } from './tools';

const run = promisify(execFile);

export const PYTHON_DIR = join(REPO_ROOT, 'python');
export const PYTHON_LOCK = join(PYTHON_DIR, 'requirements.lock');


async function interpreterVersion(python: string): Promise<string> {
  const { stdout } = await run(python, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])']);
  return stdout.trim();
}

/**
 * The project's Python virtual environment, built from python/requirements.lock into the cache
 * outside the clone and keyed by the lock's hash and the interpreter version: a changed lock gets
 * a fresh environment, an unchanged one is reused by every clone and CI run.
 */
export async function ensurePythonEnv(cacheDir: string, log: (line: string) => void = () => {}): Promise<PythonEnv> {
  const base = process.env.VLA_PYTHON ?? findOnPath('python3');
  if (!base) throw new Error('python3 not found on PATH (set VLA_PYTHON to a Python 3.11 interpreter)');
  const version = await interpreterVersion(base);
  const [major, minor] = version.split('.').map(Number);
  if (major !== 3 || minor === undefined || minor < 11 || minor > 12) {
    throw new Error(`${base} is Python ${version}; the project needs 3.11 or 3.12 (set VLA_PYTHON)`);
  }
  const lock = readFileSync(PYTHON_LOCK, 'utf8');
  const key = createHash('sha256').update(`${version}\n${lock}`).digest('hex').slice(0, 16);
  const venvDir = join(cacheDir, 'venvs', `py${major}.${minor}-${key}`);
  const python = join(venvDir, 'bin', 'python');
  const env = { ...process.env, PYTHONPATH: PYTHON_DIR, PYTHONUNBUFFERED: '1' };
  if (existsSync(join(venvDir, '.complete'))) return { python, venvDir, env };

  // Built beside its final place and renamed when complete, so a crash never leaves a venv that
  // looks usable; only `python -m` is used, which survives the rename.
  const building = `${venvDir}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(join(cacheDir, 'venvs'), { recursive: true });
  log(`creating the Python environment ${venvDir} from python/requirements.lock`);
  try {
    await run(base, ['-m', 'venv', building]);
    const pip = [join(building, 'bin', 'python'), '-m', 'pip', '--disable-pip-version-check', '--no-input'];
    await run(pip[0]!, [...pip.slice(1), 'install', '--no-deps', '-r', PYTHON_LOCK], { maxBuffer: 64 * 1024 * 1024 });
    writeFileSync(join(building, '.complete'), `${new Date().toISOString()}\n`);
    try {
      renameSync(building, venvDir);
    } catch (err) {
      // Another process finished the same environment first: use theirs.
      if (!existsSync(join(venvDir, '.complete'))) throw err;
      rmSync(building, { recursive: true, force: true });
    }
  } catch (err) {
    rmSync(building, { recursive: true, force: true });
    const stderr = (err as { stderr?: string }).stderr;
    throw new Error(`could not build the Python environment: ${stderr ? stderr.split('\n').slice(-15).join('\n') : String(err)}`);
  }
  return { python, venvDir, env };
}
