import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PYTHON_BORDER_SCHEMAS, PYTHON_SCHEMA_DIR, TrainerConfig, pythonJsonSchemaOf, type PythonBorderSchemaName } from '../../data-schemas/python-border';
import { REPO_ROOT } from '../../infra/config';

const names = Object.keys(PYTHON_BORDER_SCHEMAS) as PythonBorderSchemaName[];

describe('the Python border (python/vla_py/schemas)', () => {
  it.each(names)('%s.schema.json is what the zod schema generates (run `npm run schemas` after changing it)', (name) => {
    const checkedIn = readFileSync(join(REPO_ROOT, PYTHON_SCHEMA_DIR, `${name}.schema.json`), 'utf8');
    expect(checkedIn).toBe(pythonJsonSchemaOf(name));
  });

  it('holds no schema file that is not generated', () => {
    const files = readdirSync(join(REPO_ROOT, PYTHON_SCHEMA_DIR)).filter((f) => f.endsWith('.schema.json'));
    expect(files.sort()).toEqual(names.map((n) => `${n}.schema.json`).sort());
  });

  it('hands Python no default: every trainer config field is required, at every level', () => {
    const schema = JSON.parse(pythonJsonSchemaOf('trainer-config')) as { properties: Record<string, { properties?: object; required?: string[] }>; required: string[] };
    expect(schema.required.sort()).toEqual(Object.keys(TrainerConfig.shape).sort());
    expect(schema.properties.lora!.required!.sort()).toEqual(Object.keys(TrainerConfig.shape.lora.shape).sort());
    for (const name of names) expect(pythonJsonSchemaOf(name)).not.toContain('"default"');
  });
});
