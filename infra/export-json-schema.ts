import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './config';
import { PUBLISHED_SCHEMAS, jsonSchemaOf } from '../data-schemas/json-schema';

/** `npm run schemas`: regenerates docs/schemas/*.schema.json from the zod schemas. */
const outDir = join(REPO_ROOT, 'docs', 'schemas');
mkdirSync(outDir, { recursive: true });
for (const name of Object.keys(PUBLISHED_SCHEMAS) as (keyof typeof PUBLISHED_SCHEMAS)[]) {
  writeFileSync(join(outDir, `${name}.schema.json`), jsonSchemaOf(name));
  console.log(`docs/schemas/${name}.schema.json`);
}
