import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/config';

/**
 * Dependencies point one way (docs/design.md, "Layers"): data-schemas/ at the bottom, then
 * activities/ and workflows/, then infra/ (local stack, setup, cluster), then workers/ and cli/ on
 * top. And what several pipelines share is written once: the Gemini client in activities/gemini/,
 * page and SVG markup in activities/report/html.ts.
 */

const SOURCE_DIRS = ['data-schemas', 'activities', 'workflows', 'infra', 'workers', 'cli'] as const;
type Layer = (typeof SOURCE_DIRS)[number] | 'bench' | 'test';

/** What each layer must not import: everything above it. */
const FORBIDDEN: Partial<Record<Layer, readonly Layer[]>> = {
  'data-schemas': ['activities', 'workflows', 'infra', 'workers', 'cli', 'bench', 'test'],
  activities: ['infra', 'workers', 'cli', 'bench', 'test'],
  workflows: ['infra', 'workers', 'cli', 'bench', 'test'],
  infra: ['workers', 'cli', 'bench', 'test'],
};

interface SourceFile {
  /** Relative to the repository root, with forward slashes. */
  path: string;
  text: string;
}

function sourceFiles(): SourceFile[] {
  return SOURCE_DIRS.flatMap((dir) =>
    readdirSync(join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.ts') && !name.split('/').includes('node_modules'))
      .map((name) => ({ path: `${dir}/${name}`, text: readFileSync(join(REPO_ROOT, dir, name), 'utf8') })),
  );
}

const layerOf = (path: string): string => path.split('/')[0]!;

/** The repository paths a file imports (static, type-only, re-exports and dynamic `import()`), packages left out. */
function importedPaths(file: SourceFile): string[] {
  return ts
    .preProcessFile(file.text, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => relative(REPO_ROOT, normalize(join(REPO_ROOT, dirname(file.path), spec))).split('\\').join('/'));
}

/** Each `file: imports target` whose target layer `file`'s layer must not import. */
function layeringViolations(files: readonly SourceFile[]): string[] {
  return files.flatMap((file) => {
    const forbidden = FORBIDDEN[layerOf(file.path) as Layer] ?? [];
    return importedPaths(file)
      .filter((target) => (forbidden as readonly string[]).includes(layerOf(target)))
      .map((target) => `${file.path} imports ${target}`);
  });
}

/** Files other than `allowed` whose text matches `pattern`. */
function filesMatching(files: readonly SourceFile[], pattern: RegExp, allowed: readonly string[]): string[] {
  return files.filter((f) => !allowed.includes(f.path) && pattern.test(f.text)).map((f) => f.path);
}

describe('module layering', () => {
  const files = sourceFiles();

  it('finds the sources it checks', () => {
    for (const dir of SOURCE_DIRS) expect(files.some((f) => f.path.startsWith(`${dir}/`)), dir).toBe(true);
  });

  it('no layer imports one above it: activities/, workflows/ and data-schemas/ never import infra/, workers/ or cli/; infra/ never imports workers/ or cli/', () => {
    expect(layeringViolations(files)).toEqual([]);
  });

  it('the check catches an import in the wrong direction, type-only and dynamic ones included', () => {
    const wrong: SourceFile[] = [
      { path: 'activities/vqa/x.ts', text: "import type { PythonEnv } from '../../infra/python';" },
      { path: 'activities/x.ts', text: "export { run } from '../workers/cpu';" },
      { path: 'data-schemas/x.ts', text: "const m = await import('../activities/store');" },
      { path: 'infra/cluster/x.ts', text: "import { main } from '../../cli/main';" },
      // The allowed direction: infra uses an activity-side helper, a worker uses infra.
      { path: 'infra/x.ts', text: "import { stopProcess } from '../activities/runtime/processes';" },
      { path: 'workers/x.ts', text: "import { withTracing } from '../infra/telemetry';" },
    ];
    expect(layeringViolations(wrong)).toEqual([
      'activities/vqa/x.ts imports infra/python',
      'activities/x.ts imports workers/cpu',
      'data-schemas/x.ts imports activities/store',
      'infra/cluster/x.ts imports cli/main',
    ]);
  });

  it('the Gemini client is built in activities/gemini/client.ts only, and nothing outside relabel/ reaches into the relabel labeler', () => {
    expect(filesMatching(files, /new GoogleGenAI\s*\(/, ['activities/gemini/client.ts'])).toEqual([]);
    const intoRelabelGemini = files.filter((f) => !f.path.startsWith('activities/relabel/') && importedPaths(f).some((p) => p.startsWith('activities/relabel/gemini/')));
    expect(intoRelabelGemini.map((f) => f.path)).toEqual([]);
  });

  it('page shells, SVG roots and markup escaping are written in activities/report/html.ts only', () => {
    const html = ['activities/report/html.ts'];
    expect(filesMatching(files, /<!doctype html/i, html)).toEqual([]);
    expect(filesMatching(files, /xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, html)).toEqual([]);
    expect(filesMatching(files, /&amp;/, html)).toEqual([]);
  });
});
