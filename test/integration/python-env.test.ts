import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../infra/config';
import { ensurePythonEnv, PYTHON_LOCK } from '../../infra/python';

const run = promisify(execFile);

describe('the Python virtual environment', () => {
  it('is built from the lock, keyed by its hash, and reused', async () => {
    const { cacheDir } = loadConfig();
    const first = await ensurePythonEnv(cacheDir);
    expect(first.venvDir.startsWith(join(cacheDir, 'venvs'))).toBe(true);
    const marker = statSync(join(first.venvDir, '.complete')).mtimeMs;

    const { stdout } = await run(first.python, ['-m', 'vla_py.doctor'], { env: first.env });
    const report = JSON.parse(stdout) as { python: string; packages: Record<string, string | null> };
    const pins = Object.fromEntries(
      readFileSync(PYTHON_LOCK, 'utf8')
        .split('\n')
        .map((l) => l.replace(/#.*/, '').trim())
        .filter((l) => l.includes('=='))
        .map((l) => l.split('==') as [string, string]),
    );
    expect(Object.keys(pins).length).toBeGreaterThan(0);
    expect(report.packages).toEqual(pins);

    const second = await ensurePythonEnv(cacheDir);
    expect(second.venvDir).toBe(first.venvDir);
    expect(statSync(join(second.venvDir, '.complete')).mtimeMs).toBe(marker);
  });
});
