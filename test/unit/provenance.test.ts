import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { gitRevisionOf } from '../../activities/training/train';
import { REPO_ROOT } from '../../infra/config';

const LockFile = z.object({
  lockfileVersion: z.literal(3),
  packages: z.record(z.string(), z.object({ optionalDependencies: z.record(z.string(), z.string()).optional() })),
});

/** Where Node would find `dep` from the package at lock key `from` (walks up the node_modules chain). */
function lockKeyOf(packages: Record<string, unknown>, from: string, dep: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base === '' ? '' : `${base}/`}node_modules/${dep}`;
    if (candidate in packages) return candidate;
    if (base === '') return undefined;
    const up = base.lastIndexOf('/node_modules/');
    base = up < 0 ? '' : base.slice(0, up);
  }
}

describe('package-lock.json', () => {
  // setup runs `npm ci`, which refuses a lock that lacks any optional dependency (another
  // platform's binary included); `npm install` would instead add it and leave the clone dirty.
  it('lists every optional dependency of every locked package, for every platform', () => {
    const lock = LockFile.parse(JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')));
    const missing: string[] = [];
    for (const [key, entry] of Object.entries(lock.packages)) {
      for (const [dep, range] of Object.entries(entry.optionalDependencies ?? {})) {
        if (lockKeyOf(lock.packages, key, dep) === undefined) missing.push(`${key || '(root)'} -> ${dep}@${range}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('is what setup installs from: infra/setup.sh runs npm ci, not npm install', () => {
    const setup = readFileSync(join(REPO_ROOT, 'infra', 'setup.sh'), 'utf8');
    const commands = setup.split('\n').filter((line) => /^\s*npm (ci|install)\b/.test(line));
    expect(commands.map((c) => c.trim().split(' ').slice(0, 2).join(' '))).toEqual(['npm ci']);
  });
});

describe('gitRevisionOf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'git-revision-'));
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is the commit when the tracked code is unchanged, ignored and untracked files included; -dirty when tracked code changed', () => {
    git('init', '-q');
    writeFileSync(join(dir, '.gitignore'), 'out/\n');
    writeFileSync(join(dir, 'code.ts'), 'export const a = 1;\n');
    git('add', '.');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'init');
    const head = git('rev-parse', 'HEAD');
    expect(gitRevisionOf(dir)).toBe(head);

    mkdirSync(join(dir, 'out'));
    writeFileSync(join(dir, 'out', 'result.json'), '{}\n');
    writeFileSync(join(dir, 'notes.txt'), 'scratch\n');
    expect(gitRevisionOf(dir)).toBe(head);

    writeFileSync(join(dir, 'code.ts'), 'export const a = 2;\n');
    expect(gitRevisionOf(dir)).toBe(`${head}-dirty`);
  });

  it('is "unknown" outside a git checkout', () => {
    const bare = mkdtempSync(join(tmpdir(), 'no-git-'));
    try {
      expect(gitRevisionOf(bare)).toBe('unknown');
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });
});
