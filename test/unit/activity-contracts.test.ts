import { Connection } from '@temporalio/client';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createCpuActivities, createGeminiActivities, createGpuActivities } from '../../activities';
import { createTaskQueueActivities } from '../../activities/task-queues';
import { createObjectStore } from '../../activities/store';
import { stationWorkerActivities } from '../../activities/robot/episode/station-activities';
import { createStationDriver } from '../../activities/robot/station';
import { activityContract, implement, TaskQueue, workflowQueue, type AnyContract, type WorkerRole } from '../../data-schemas/activity-contract';
import { INVALID_ACTIVITY_INPUT } from '../../data-schemas/failures';
import type { proxyFor } from '../../workflows/activity-proxy';

const ROOT = join(__dirname, '..', '..');
const SOURCE_DIRS = ['activities', 'workflows', 'data-schemas', 'workers', 'cli', 'infra', 'bench'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const isContract = (value: unknown): value is AnyContract =>
  typeof value === 'object' && value !== null && 'roles' in value && 'activities' in value && 'name' in value && Array.isArray((value as AnyContract).roles);

/** Every contract the data-schemas modules export. */
async function allContracts(): Promise<AnyContract[]> {
  const found = new Set<AnyContract>();
  for (const file of sourceFiles(join(ROOT, 'data-schemas'))) {
    const module = (await import(file)) as Record<string, unknown>;
    for (const value of Object.values(module)) if (isContract(value)) found.add(value);
  }
  return [...found];
}

/** What each kind of worker registers, built as the workers build it (nothing is called). */
function registeredActivities(): Record<WorkerRole, string[]> {
  const store = createObjectStore({ roots: 'unconfined' });
  const deps = { store };
  // A lazy connection never dials: the probe activity only keeps its service for later calls.
  const workflowService = Connection.lazy({ address: '127.0.0.1:1' }).workflowService;
  const pythonEnv = () => Promise.reject(new Error('not used: the test only lists names'));
  const stateDir = mkdtempSync(join(tmpdir(), 'vla-station-'));
  const driver = createStationDriver({ kind: 'sim' }, { simStateFile: join(stateDir, 'arm.jsonl') });
  return {
    cpu: Object.keys({ ...createCpuActivities(deps), ...createTaskQueueActivities({ workflowService, namespace: 'vla' }) }),
    gemini: Object.keys(createGeminiActivities(deps)),
    gpu: Object.keys(createGpuActivities({ store, workDir: stateDir, pythonEnv, gitRevision: 'test' })),
    station: Object.keys(stationWorkerActivities({ stationId: 'sim-1', driver, store, stateDir })),
  };
}

describe('activity contracts', () => {
  it('every kind of worker registers exactly the activities its contracts declare', async () => {
    const contracts = await allContracts();
    expect(contracts.length).toBeGreaterThan(5);
    const registered = registeredActivities();
    for (const role of Object.keys(registered) as WorkerRole[]) {
      const declared = new Set(contracts.filter((c) => c.roles.includes(role)).flatMap((c) => Object.keys(c.activities)));
      const missing = [...declared].filter((name) => !registered[role].includes(name));
      const undeclared = registered[role].filter((name) => !declared.has(name));
      expect({ role, missing, undeclared }).toEqual({ role, missing: [], undeclared: [] });
    }
  });

  it('an activity name belongs to one contract', async () => {
    const owners = new Map<string, string[]>();
    for (const c of await allContracts()) for (const name of Object.keys(c.activities)) owners.set(name, [...(owners.get(name) ?? []), c.name]);
    expect([...owners].filter(([, of]) => of.length > 1)).toEqual([]);
  });

  it('parses each input at the border: a wrong shape fails non-retryable, naming the activity and the field', async () => {
    const contract = activityContract('test', ['cpu'], { double: { input: z.object({ n: z.int() }), output: z.int() } });
    const activities = implement(contract, 'cpu', { double: ({ n }) => Promise.resolve(n * 2) });
    await expect(activities.double({ n: 2 })).resolves.toBe(4);
    const err = await activities.double({ n: 'two' } as unknown as { n: number }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: INVALID_ACTIVITY_INPUT, nonRetryable: true });
    expect((err as Error).message).toMatch(/^double: invalid input: .*n/);
    expect(() => implement(contract, 'gpu' as 'cpu', { double: ({ n }) => Promise.resolve(n) })).toThrow(/not served by gpu workers/);
  });

  it('a proxy onto a queue of the wrong kind of worker does not compile', () => {
    // Never called (proxies exist only inside workflows); the compiler checks these lines.
    const typeChecks = (proxy: typeof proxyFor): void => {
      const geminiOnly = activityContract('gemini only', ['gemini'], { call: { input: z.object({}), output: z.void() } });
      proxy(geminiOnly, TaskQueue.gemini, { startToCloseTimeout: '1 minute' });
      // @ts-expect-error a CPU queue is not polled by the Gemini workers
      proxy(geminiOnly, TaskQueue.cpu, { startToCloseTimeout: '1 minute' });
      // @ts-expect-error nor is a station's
      proxy(geminiOnly, TaskQueue.station('sim-1'), { startToCloseTimeout: '1 minute' });
      // @ts-expect-error a bare string says nothing about who polls it
      proxy(geminiOnly, 'vla-gemini', { startToCloseTimeout: '1 minute' });
      // @ts-expect-error the workflow's own queue is a CPU worker's
      proxy(geminiOnly, workflowQueue('cpu'), { startToCloseTimeout: '1 minute' });
    };
    expect(typeChecks).toBeTypeOf('function');
  });
});

describe('one way to reach an activity and a queue', () => {
  const files = SOURCE_DIRS.flatMap((d) => sourceFiles(join(ROOT, d))).map((path) => ({ path: relative(ROOT, path), text: readFileSync(path, 'utf8') }));

  /** Identifiers and string texts of the code (a parse: comments name queues and functions in prose). */
  function codeTokens(path: string, text: string): { kind: ts.SyntaxKind; text: string }[] {
    const tokens: { kind: ts.SyntaxKind; text: string }[] = [];
    const visit = (node: ts.Node): void => {
      if (ts.isIdentifier(node)) tokens.push({ kind: node.kind, text: node.text });
      else if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) tokens.push({ kind: ts.SyntaxKind.StringLiteral, text: node.text });
      else if (ts.isTemplateExpression(node)) tokens.push({ kind: ts.SyntaxKind.StringLiteral, text: node.head.text });
      ts.forEachChild(node, visit);
    };
    visit(ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true));
    return tokens;
  }

  it('workflows proxy activities only through proxyFor / proxyLocalFor', () => {
    const offenders = files
      .filter((f) => f.path !== 'workflows/activity-proxy.ts')
      .filter((f) => codeTokens(f.path, f.text).some((t) => t.kind === ts.SyntaxKind.Identifier && (t.text === 'proxyActivities' || t.text === 'proxyLocalActivities')))
      .map((f) => f.path);
    expect(offenders).toEqual([]);
  });

  it('no task queue name is spelled outside data-schemas/activity-contract.ts', () => {
    const queueLiteral = /^vla-(cpu|gemini|gpu|station-)/;
    const offenders = files
      .filter((f) => f.path !== 'data-schemas/activity-contract.ts')
      .flatMap((f) =>
        codeTokens(f.path, f.text)
          .filter((t) => t.kind === ts.SyntaxKind.StringLiteral && queueLiteral.test(t.text))
          .map((t) => `${f.path}: ${t.text}`),
      );
    expect(offenders).toEqual([]);
  });
});
