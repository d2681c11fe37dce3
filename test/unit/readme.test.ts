import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WORKFLOW_INPUTS } from '../../data-schemas/workflows';
import { REPO_ROOT } from '../../infra/config';

/** The README's copy-paste JSON for the Web UI must parse against the workflow input schemas. */
describe('README Web UI inputs', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/<!-- ui-input: (\w+) -->\s*```json\n([\s\S]*?)```/g)];

  it('documents an input for every workflow (some more than one)', () => {
    expect([...new Set(blocks.map((b) => b[1]))].sort()).toEqual(Object.keys(WORKFLOW_INPUTS).sort());
  });

  it.each(blocks.map((b) => [b[1]!, b[2]!]))('%s input parses', (workflow, json) => {
    const schema = WORKFLOW_INPUTS[workflow as keyof typeof WORKFLOW_INPUTS];
    expect(schema, `unknown workflow ${workflow}`).toBeDefined();
    const result = schema.safeParse(JSON.parse(json));
    expect(result.error?.issues ?? []).toEqual([]);
  });
});
