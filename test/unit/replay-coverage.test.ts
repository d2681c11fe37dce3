import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as workflows from '../../workflows';
import { HISTORIES_DIR } from '../helpers/temporal';

/**
 * test/integration/replay.test.ts replays every history in test/fixtures/histories/ against the
 * current workflow code; a workflow type with no history there is never checked for
 * non-determinism. The type is read from each history's WorkflowExecutionStarted event, not from
 * its file name.
 */

/** Workflow types: the functions workflows/index.ts exports (queries and signals are objects). */
const workflowTypes = Object.entries(workflows)
  .filter(([, value]) => typeof value === 'function')
  .map(([name]) => name)
  .sort();

/** The workflow type a recorded history starts, or an error naming the file. */
function startedType(file: string): string {
  const history = historyFromJSON(JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8')));
  const name = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
  if (!name) throw new Error(`${file}: its first event is not a WorkflowExecutionStarted event naming a workflow type`);
  return name;
}

describe('replay coverage', () => {
  const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));
  const recordedTypes = new Set(files.map(startedType));

  it('finds the workflow types', () => {
    expect(workflowTypes).toContain('relabelDataset');
    expect(workflowTypes).not.toContain('relabelProgressQuery');
  });

  it('has a recorded history of every workflow type', () => {
    const missing = workflowTypes.filter((type) => !recordedTypes.has(type));
    expect(
      missing,
      `workflow types without a recorded history in test/fixtures/histories/ (record one with VLA_RECORD_HISTORIES=1, see test/integration/replay.test.ts): ${missing.join(', ')}`,
    ).toEqual([]);
  });

  it('holds histories of workflow types that exist only', () => {
    const unknown = [...recordedTypes].filter((type) => !workflowTypes.includes(type));
    expect(unknown, `histories of workflow types workflows/index.ts does not export: ${unknown.join(', ')}`).toEqual([]);
  });
});
