import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { PythonEnv } from '../activities/runtime/python-env';
import { REPO_ROOT } from './config';
import { findOnPath } from './tools';

const run = promisify(execFile);

export const PYTHON_DIR = join(REPO_ROOT, 'python');
export const PYTHON_LOCK = join(PYTHON_DIR, 'requirements.lock');
/** The LeRobot environment's own folder: its lock and the Python package run in it (docs/dataset-format.md, "LeRobot datasets"). */
export const LEROBOT_DIR = join(PYTHON_DIR, 'lerobot');
export const LEROBOT_LOCK = join(LEROBOT_DIR, 'requirements.lock');

async function interpreterVersion(python: string): Promise<string> {
  const { stdout } = await run(python, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])']);
  return stdout.trim();
}

/** One locked virtual environment: which lock, which interpreters may build it, what it imports. */
export interface VenvSpec {
  /** Names the environment in messages ("the LeRobot Python environment"). */
  label: string;
  /** Starts its cache folder's name: `<dirPrefix>py3.12-<key>`. */
  dirPrefix: string;
  lock: string;
  /** The base interpreter: the override, else the first of these names on PATH, then pyenv's installed versions, that runs and is an accepted version. */
  interpreter: { envVar: string; names: string[] };
  /** Accepted Python 3 minor versions. */
  minors: number[];
  /** Folder put on PYTHONPATH so the project's modules run with `-m`. */
  pythonPath: string;
}

/** pyenv's installed interpreters of the accepted versions: a pyenv shim answers only for the selected version. */
function pyenvInterpreters(minors: number[]): string[] {
  const root = process.env.PYENV_ROOT ?? join(homedir(), '.pyenv');
  if (!existsSync(join(root, 'versions'))) return [];
  return readdirSync(join(root, 'versions'))
    .filter((v) => minors.some((m) => v.startsWith(`3.${m}.`)))
    .sort()
    .reverse()
    .map((v) => join(root, 'versions', v, 'bin', 'python3'))
    .filter((p) => existsSync(p));
}

/** The first candidate interpreter that runs and is of an accepted version, with its version. */
async function findInterpreter(spec: VenvSpec): Promise<{ base: string; version: string; major: number; minor: number }> {
  const { envVar, names } = spec.interpreter;
  const override = process.env[envVar];
  const candidates = override ? [override] : [...names.flatMap((n) => findOnPath(n) ?? []), ...pyenvInterpreters(spec.minors)];
  const wanted = spec.minors.map((m) => `3.${m}`).join(' or ');
  const refused: string[] = [];
  for (const base of candidates) {
    const version = await interpreterVersion(base).catch(() => undefined);
    const [major, minor] = (version ?? '').split('.').map(Number);
    if (version !== undefined && major === 3 && minor !== undefined && spec.minors.includes(minor)) return { base, version, major, minor };
    refused.push(`${base} (${version === undefined ? 'does not run' : `Python ${version}`})`);
  }
  const tried = refused.length > 0 ? `tried ${refused.join(', ')}` : `${names.join(' / ')} not found on PATH`;
  throw new Error(`the ${spec.label} needs Python ${wanted}: ${tried} (set ${envVar})`);
}

/**
 * Builds a virtual environment beside its final place (`<venvDir>.building-<pid>`) with `build` and
 * renames it into place when complete, so a crash never leaves one that looks usable (a `.complete`
 * file marks it); only `python -m` is used, which survives the rename. Another process that finished
 * the same environment first wins.
 */
export async function buildVenvAside(venvDir: string, label: string, build: (building: string) => Promise<void>): Promise<void> {
  const building = `${venvDir}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(dirname(venvDir), { recursive: true });
  try {
    await build(building);
    writeFileSync(join(building, '.complete'), `${new Date().toISOString()}\n`);
    try {
      renameSync(building, venvDir);
    } catch (err) {
      if (!existsSync(join(venvDir, '.complete'))) throw err;
      rmSync(building, { recursive: true, force: true });
    }
  } catch (err) {
    rmSync(building, { recursive: true, force: true });
    const stderr = (err as { stderr?: string }).stderr;
    throw new Error(`could not build the ${label}: ${stderr ? stderr.split('\n').slice(-15).join('\n') : String(err)}`);
  }
}

/**
 * A virtual environment built from a lock into the cache outside the clone and keyed by the lock's
 * hash and the interpreter version: a changed lock gets a fresh environment, an unchanged one is
 * reused by every clone and CI run.
 */
export async function ensureVenv(spec: VenvSpec, cacheDir: string, log: (line: string) => void = () => {}): Promise<PythonEnv> {
  const { base, version, major, minor } = await findInterpreter(spec);
  const lock = readFileSync(spec.lock, 'utf8');
  const key = createHash('sha256').update(`${version}\n${lock}`).digest('hex').slice(0, 16);
  const venvDir = join(cacheDir, 'venvs', `${spec.dirPrefix}py${major}.${minor}-${key}`);
  const python = join(venvDir, 'bin', 'python');
  const env = { ...process.env, PYTHONPATH: spec.pythonPath, PYTHONUNBUFFERED: '1' };
  if (existsSync(join(venvDir, '.complete'))) return { python, venvDir, env };

  log(`creating the ${spec.label} ${venvDir} from ${spec.lock.slice(REPO_ROOT.length + 1)}`);
  await buildVenvAside(venvDir, spec.label, async (building) => {
    await run(base, ['-m', 'venv', building]);
    const pip = [join(building, 'bin', 'python'), '-m', 'pip', '--disable-pip-version-check', '--no-input'];
    await run(pip[0]!, [...pip.slice(1), 'install', '--no-deps', '-r', spec.lock], { maxBuffer: 64 * 1024 * 1024 });
  });
  return { python, venvDir, env };
}

/** The project's environment (trainer, inference, tests): python/requirements.lock on Python 3.11 or 3.12. */
export const MAIN_VENV: VenvSpec = {
  label: 'Python environment',
  dirPrefix: '',
  lock: PYTHON_LOCK,
  interpreter: { envVar: 'VLA_PYTHON', names: ['python3'] },
  minors: [11, 12],
  pythonPath: PYTHON_DIR,
};

/**
 * The LeRobot environment: lerobot[dataset] from python/lerobot/requirements.lock on Python 3.12
 * (lerobot needs >= 3.12). Separate from the project's environment so that only the LeRobot import
 * and export (and their tests) pay its install, and the trainer keeps its own torch pins.
 */
export const LEROBOT_VENV: VenvSpec = {
  label: 'LeRobot Python environment',
  dirPrefix: 'lerobot-',
  lock: LEROBOT_LOCK,
  interpreter: { envVar: 'VLA_LEROBOT_PYTHON', names: ['python3.12'] },
  minors: [12],
  pythonPath: LEROBOT_DIR,
};

export function ensurePythonEnv(cacheDir: string, log: (line: string) => void = () => {}): Promise<PythonEnv> {
  return ensureVenv(MAIN_VENV, cacheDir, log);
}

export function ensureLeRobotEnv(cacheDir: string, log: (line: string) => void = () => {}): Promise<PythonEnv> {
  return ensureVenv(LEROBOT_VENV, cacheDir, log);
}
