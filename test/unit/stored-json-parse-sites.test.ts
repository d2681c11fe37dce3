import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/config';

/**
 * "One reader for stored JSON" (docs/design.md): JSON read back from the object store goes through
 * `getJson` / `parseStoredJson` (activities/store/index.ts), so a bad file's error names the file
 * and what it should hold. A `JSON.parse(` anywhere else in activities/ must be of bytes that are
 * not a stored file, listed here with why; a new one fails this test until it uses the reader or
 * is listed. Counted per file, so a second parse in a listed file is looked at too.
 */
const NOT_STORED_JSON: Record<string, { parses: number; reason: string }> = {
  'activities/runtime/processes.ts': { parses: 1, reason: "a PID file on the worker's own disk; an unreadable one is reported as unverifiable, never thrown" },
  'activities/robot/policy/action-tokens.ts': { parses: 1, reason: "a base model's tokenizer.json in a local directory, read best-effort: a layout it does not know skips the check" },
  'activities/robot/station/widowx-http.ts': { parses: 1, reason: "the arm server's HTTP answer body" },
  'activities/robot/station/sim.ts': { parses: 1, reason: "the simulated arm's own append-only log on local disk; a line a crash cut short ends it" },
  'activities/robot/verifier/gemini.ts': { parses: 1, reason: "a model's answer text" },
  'activities/relabel/gemini/response.ts': { parses: 1, reason: "a model's answer text (a bad one is re-prompted, not a file error)" },
  'activities/gemini/errors.ts': { parses: 1, reason: "the error body of a failed HTTP call" },
  'activities/vqa/backends/local.ts': { parses: 1, reason: "lines a local inference child process writes to stdout" },
  'activities/robot/station/widowx-envs.ts': { parses: 1, reason: 'lines the widowx_envs driver child process writes to stdout' },
  'activities/data/lerobot-import.ts': { parses: 1, reason: 'lines the LeRobot reader child process writes to stdout' },
  'activities/training/trainer-events.ts': { parses: 1, reason: 'event lines the Python trainer child process writes to stdout' },
};

/** The store's reader itself. */
const READER = 'activities/store/';

function jsonParseCalls(file: string, text: string): number[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const lines: number[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.expression.getText(source).replace(/\s/g, '') === 'JSON.parse') {
      lines.push(source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return lines;
}

describe('stored JSON is read through the store reader', () => {
  const parses = new Map<string, number[]>();
  for (const rel of readdirSync(join(REPO_ROOT, 'activities'), { recursive: true, encoding: 'utf8' })) {
    const file = `activities/${rel.split('\\').join('/')}`;
    if (!file.endsWith('.ts') || file.startsWith(READER)) continue;
    const lines = jsonParseCalls(file, readFileSync(join(REPO_ROOT, file), 'utf8'));
    if (lines.length > 0) parses.set(file, lines);
  }

  it('finds JSON.parse calls (the scan works)', () => {
    expect(jsonParseCalls('x.ts', 'const a = JSON.parse(text); // JSON.parse(comment)\nconst b = "JSON.parse(s)";')).toEqual([1]);
  });

  it('activities/ parses JSON by hand only where the bytes are not a stored file', () => {
    const unexplained = [...parses]
      .filter(([file, lines]) => NOT_STORED_JSON[file]?.parses !== lines.length)
      .map(([file, lines]) => `${file}:${lines.join(',')}: ${NOT_STORED_JSON[file] ? `${lines.length} parses, ${NOT_STORED_JSON[file].parses} listed` : 'use getJson/parseStoredJson (activities/store), or list it here with why its bytes are not a stored file'}`);
    expect(unexplained).toEqual([]);
  });

  it('lists no file that no longer parses JSON by hand', () => {
    expect(Object.keys(NOT_STORED_JSON).filter((file) => !parses.has(file))).toEqual([]);
  });
});
