import type { WorkflowHandle } from '@temporalio/client';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PythonEnv } from '../../activities/runtime/python-env';
import { FileStore } from '../../activities/store';
import { buildTinyModel } from '../../cli/commands/train';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { loadConfig } from '../../infra/config';
import { ensurePythonEnv } from '../../infra/python';
import { importBridgeSample } from './datasets';

/** What an experiment test runs on: a temp folder, a store in it with 3 Bridge trajectories, the Python env and the tiny model. */
export interface ExperimentFixture {
  store: FileStore;
  dir: string;
  storeUri: string;
  datasetUri: string;
  python: PythonEnv;
  baseModel: string;
}

export async function experimentFixture(prefix: string): Promise<ExperimentFixture> {
  const store = new FileStore();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const storeUri = fileUri(join(dir, 'store'));
  const datasetUri = joinUri(storeUri, 'datasets', 'bridge');
  await importBridgeSample(store, datasetUri, 3);
  const python = await ensurePythonEnv(loadConfig().cacheDir);
  const baseModel = await buildTinyModel(join(dir, 'tiny-vlm'), loadConfig().cacheDir);
  return { store, dir, storeUri, datasetUri, python, baseModel };
}

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

/** Events of a workflow's history, counted by the label `label` gives them (undefined: not counted). */
export async function countEvents(handle: WorkflowHandle, label: (event: HistoryEvent) => string | undefined): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const event of (await handle.fetchHistory()).events ?? []) {
    const key = label(event);
    if (key !== undefined) counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Child workflows a history started, by workflow type. */
export const childStarts = (handle: WorkflowHandle): Promise<Record<string, number>> =>
  countEvents(handle, (e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name ?? undefined);
