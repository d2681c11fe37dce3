import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './config';
import { PUBLISHED_SCHEMAS, jsonSchemaOf } from '../data-schemas/json-schema';
import { PYTHON_BORDER_SCHEMAS, PYTHON_SCHEMA_DIR, pythonJsonSchemaOf, type PythonBorderSchemaName } from '../data-schemas/python-border';

/**
 * `npm run schemas`: regenerates docs/schemas/*.schema.json and the Python border's
 * python/vla_py/schemas/*.schema.json (what the Python side validates against) from the zod schemas.
 */
const outDir = join(REPO_ROOT, 'docs', 'schemas');
mkdirSync(outDir, { recursive: true });
for (const name of Object.keys(PUBLISHED_SCHEMAS) as (keyof typeof PUBLISHED_SCHEMAS)[]) {
  writeFileSync(join(outDir, `${name}.schema.json`), jsonSchemaOf(name));
  console.log(`docs/schemas/${name}.schema.json`);
}
mkdirSync(join(REPO_ROOT, PYTHON_SCHEMA_DIR), { recursive: true });
for (const name of Object.keys(PYTHON_BORDER_SCHEMAS) as PythonBorderSchemaName[]) {
  writeFileSync(join(REPO_ROOT, PYTHON_SCHEMA_DIR, `${name}.schema.json`), pythonJsonSchemaOf(name));
  console.log(`${PYTHON_SCHEMA_DIR}/${name}.schema.json`);
}
