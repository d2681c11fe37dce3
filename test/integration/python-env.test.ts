import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../infra/config';
import { ensureLeRobotEnv, ensurePythonEnv, LEROBOT_LOCK, PYTHON_LOCK } from '../../infra/python';

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

  it('has a separate LeRobot environment on Python 3.12, built from its own lock', async () => {
    const { cacheDir } = loadConfig();
    const lerobot = await ensureLeRobotEnv(cacheDir);
    expect(lerobot.venvDir).toMatch(/\/venvs\/lerobot-py3\.12-[0-9a-f]{16}$/);
    expect(lerobot.venvDir).not.toBe((await ensurePythonEnv(cacheDir)).venvDir);
    const script = 'import json, sys, importlib.metadata as m; print(json.dumps([sys.version_info[:2], {d.metadata["Name"].lower(): d.version for d in m.distributions()}]))';
    const { stdout } = await run(lerobot.python, ['-c', script], { env: lerobot.env });
    const [version, installed] = JSON.parse(stdout) as [[number, number], Record<string, string>];
    expect(version).toEqual([3, 12]);
    const pins = readFileSync(LEROBOT_LOCK, 'utf8')
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter((l) => l.includes('=='))
      .map((l) => l.split('==') as [string, string]);
    expect(pins.length).toBeGreaterThan(50);
    for (const [name, version] of pins) expect(installed[name.toLowerCase()], name).toBe(version);
  }, 20 * 60_000);
});
