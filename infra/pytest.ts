/**
 * Runs the Python side's tests (python/tests) with the project's virtual environment, offline:
 * `npm run test:python [-- pytest args]`. Exits with pytest's code (5, "no tests collected", is a failure).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { loadConfig, REPO_ROOT } from './config';
import { ensurePythonEnv } from './python';

const env = await ensurePythonEnv(loadConfig().cacheDir, (line) => console.log(line));
const result = spawnSync(env.python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', ...process.argv.slice(2)], {
  cwd: join(REPO_ROOT, 'python'),
  stdio: 'inherit',
  // No hub: every model and data set in these tests is built locally.
  env: { ...env.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false' },
});
process.exit(result.status ?? 1);
