import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import type { PythonEnv } from '../../activities/runtime/python-env';
import { REPO_ROOT } from '../../infra/config';
import { buildVenvAside, PYTHON_DIR } from '../../infra/python';

const run = promisify(execFile);
export const LMMS_EVAL_PINS = join(PYTHON_DIR, 'lmms-eval-test.txt');

/**
 * A test-only environment with the real lmms-eval package: a venv whose site-packages extend the
 * project's (a .pth line), so torch and transformers are not installed twice, plus the pinned
 * packages of python/lmms-eval-test.txt (--no-deps). Cached beside the project's venvs, keyed by
 * the project venv and the pin file; built aside and renamed when complete.
 */
export async function ensureLmmsEvalEnv(cacheDir: string, project: PythonEnv): Promise<{ python: string }> {
  const pins = readFileSync(LMMS_EVAL_PINS, 'utf8');
  const key = createHash('sha256').update(`${basename(project.venvDir)}\n${pins}`).digest('hex').slice(0, 16);
  const venvDir = join(cacheDir, 'venvs', `lmms-eval-${key}`);
  const python = join(venvDir, 'bin', 'python');
  if (existsSync(join(venvDir, '.complete'))) return { python };
  await buildVenvAside(venvDir, 'lmms-eval test environment', async (building) => {
    await run(project.python, ['-m', 'venv', '--without-pip', building]);
    const sitePackages = async (py: string): Promise<string> => (await run(py, ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'])).stdout.trim();
    const projectSite = await sitePackages(project.python);
    const ownSite = await sitePackages(join(building, 'bin', 'python'));
    writeFileSync(join(ownSite, 'vla-project-env.pth'), `${projectSite}\n`);
    // The project's pip (on the .pth path) installs into this venv's own site-packages.
    await run(join(building, 'bin', 'python'), ['-m', 'pip', '--disable-pip-version-check', '--no-input', 'install', '--no-deps', '--target', ownSite, '-r', LMMS_EVAL_PINS], {
      maxBuffer: 64 * 1024 * 1024,
    });
  });
  return { python };
}

const Checked = z.object({ file: z.union([z.number(), z.string()]), lmms_eval: z.union([z.number(), z.string(), z.null()]) });
/** What test/fixtures/lmms_eval_reads.py reports. */
export const LmmsEvalReads = z.object({
  results_file: z.string(),
  tasks: z.record(
    z.string(),
    z.object({
      metrics: z.record(z.string(), Checked),
      n_samples: z.int(),
      n_effective: z.int(),
      loaded_rows: z.int(),
      loaded_columns: z.array(z.string()),
      doc_ids: z.array(z.int()),
    }),
  ),
});
export type LmmsEvalReads = z.infer<typeof LmmsEvalReads>;

/** Has lmms-eval's own code read a results file and its per-sample files and re-aggregate them. */
export async function lmmsEvalReads(python: string, resultsFile: string): Promise<LmmsEvalReads> {
  const script = join(REPO_ROOT, 'test', 'fixtures', 'lmms_eval_reads.py');
  const { stdout } = await run(python, ['-W', 'ignore', script, resultsFile], { env: { ...process.env, HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1' }, maxBuffer: 64 * 1024 * 1024 });
  return LmmsEvalReads.parse(JSON.parse(stdout));
}
