import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/config';

/**
 * The repository stands alone (docs/design.md, "Testing"): nothing in it cites a document a clone
 * does not have, and the docs' links and pointers lead to files and sections that exist.
 */

/** Files not checked for citations: the lock file's package metadata is not ours. */
const NOT_SCANNED = new Set(['package-lock.json']);

// Assembled from parts so that this file does not match its own patterns.
const OUTSIDE_CITATION = new RegExp(
  [String.raw`DOMAIN\.md`, String.raw`ARCHITECTURE\.md`, String.raw`\.\./shared`, String.raw`[Ii]ssue #?[0-9]+`].join('|'),
);

/** Tracked files and new files not ignored, as they are in the working tree (text files only). */
function repoTextFiles(): { path: string; text: string }[] {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((p) => p !== '');
  const files: { path: string; text: string }[] = [];
  for (const path of new Set(listed)) {
    const abs = join(REPO_ROOT, path);
    // A file deleted in the working tree, a symlink (node_modules) or a submodule is not text we wrote.
    if (!existsSync(abs) || !lstatSync(abs).isFile()) continue;
    const bytes = readFileSync(abs);
    if (bytes.includes(0)) continue; // binary: frames, TFRecords
    files.push({ path, text: bytes.toString('utf8') });
  }
  return files;
}

/** `path:line: text` for each line that cites a document outside the repository. */
function outsideCitations(files: readonly { path: string; text: string }[]): string[] {
  return files.flatMap(({ path, text }) =>
    NOT_SCANNED.has(path)
      ? []
      : text.split('\n').flatMap((line, i) => (OUTSIDE_CITATION.test(line) ? [`${path}:${i + 1}: ${line.trim()}`] : [])),
  );
}

/** Markdown without fenced code blocks and inline code, where brackets are not links. */
function proseOf(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** Relative link targets of a Markdown file: inline `[text](target "title")` and reference `[id]: target`. */
function relativeLinks(markdown: string): string[] {
  const prose = proseOf(markdown);
  const targets = [
    ...[...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!),
    ...[...prose.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]!),
  ];
  return targets
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#'))
    .map((t) => decodeURIComponent(t.replace(/[#?].*$/, '')));
}

/** Headings of a Markdown file, without the leading hashes. */
function headings(markdown: string): string[] {
  return [...proseOf(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)].map((m) => m[1]!);
}

/**
 * Pointers at a section of docs/method.md or docs/design.md, as comments and docs write them:
 * `docs/method.md, "Source data"` or `` [`method.md`](method.md), "Source data" ``.
 */
function sectionPointers(text: string): { doc: string; section: string }[] {
  return [...text.matchAll(/(?:docs\/|\]\()(method|design)\.md\)?,\s+"([^"\n]+)"/g)].map((m) => ({ doc: `docs/${m[1]!}.md`, section: m[2]! }));
}

describe('a self-contained repository', () => {
  const files = repoTextFiles();
  const markdown = files.filter((f) => f.path === 'README.md' || /^docs\/[^/]+\.md$/.test(f.path));

  it('reads the repository (its docs and its sources)', () => {
    const paths = files.map((f) => f.path);
    expect(paths).toContain('README.md');
    expect(paths).toContain('docs/method.md');
    expect(paths).toContain('docs/design.md');
    expect(paths).toContain('test/unit/self-contained.test.ts');
    expect(paths.filter((p) => p.endsWith('.ts')).length).toBeGreaterThan(50);
  });

  it('recognises a citation of a document a clone does not have', () => {
    const planted = [
      ['DOMAIN', 'md'].join('.') + ' "Data"',
      ['ARCHITECTURE', 'md'].join('.') + ' rule 5',
      'see ' + ['..', 'shared', 'seeds'].join('/'),
      '(' + ['issue', '7'].join(' ') + ' "The policy")',
      ['Issue', '#12'].join(' '),
    ];
    expect(outsideCitations(planted.map((text, i) => ({ path: `f${i}.ts`, text })))).toHaveLength(planted.length);
    expect(outsideCitations([{ path: 'package-lock.json', text: planted[0]! }])).toEqual([]);
    expect(outsideCitations([{ path: 'a.ts', text: 'docs/method.md, "Source data"; the zod issues of a parse' }])).toEqual([]);
  });

  it('cites no document outside the repository in any file', () => {
    expect(outsideCitations(files)).toEqual([]);
  });

  it('finds the relative links of a Markdown page', () => {
    const page = [
      'See [the method](method.md#training-lora-only), [schemas](schemas) and [home](https://temporal.io).',
      '[ref]: ../README.md',
      '`[not a link](nowhere.md)`',
      '```',
      '[not a link](nowhere-either.md)',
      '```',
    ].join('\n');
    expect(relativeLinks(page)).toEqual(['method.md', 'schemas', '../README.md']);
  });

  it('links only files that exist from README.md and docs/*.md', () => {
    const broken = markdown.flatMap(({ path, text }) =>
      relativeLinks(text)
        .map((target) => resolve(REPO_ROOT, dirname(path), target))
        .filter((abs) => !existsSync(abs))
        .map((abs) => `${path} -> ${relative(REPO_ROOT, abs)}`),
    );
    expect(markdown.length).toBeGreaterThan(5);
    expect(broken).toEqual([]);
  });

  it('points at docs files that exist', () => {
    const missing = files.flatMap(({ path, text }) =>
      [...text.matchAll(/\bdocs\/([\w.-]+\.md)\b/g)].filter((m) => !existsSync(join(REPO_ROOT, 'docs', m[1]!))).map((m) => `${path}: docs/${m[1]!}`),
    );
    expect(missing).toEqual([]);
  });

  it('points at sections of docs/method.md and docs/design.md that exist', () => {
    const sections = new Map(['docs/method.md', 'docs/design.md'].map((doc) => [doc, headings(readFileSync(join(REPO_ROOT, doc), 'utf8'))]));
    const pointers = files.flatMap(({ path, text }) => sectionPointers(text).map((p) => ({ ...p, path })));
    expect(pointers.length).toBeGreaterThan(20);
    const dangling = pointers
      .filter(({ doc, section }) => !(sections.get(doc) ?? []).some((h) => h.startsWith(section)))
      .map(({ path, doc, section }) => `${path}: ${doc}, "${section}"`);
    expect(dangling).toEqual([]);
  });
});
