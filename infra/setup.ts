import { ensureChromium } from './chromium';
import { ensureTemporalServer, ensureTemporalSqlTool } from './cluster/temporal-server';
import { loadConfig } from './config';
import { ensureLeRobotEnv, ensurePythonEnv } from './python';
import { ensureVersitygw } from './s3-server';
import { ensureTemporalCli } from './temporal';

/** The setup steps that need more than npm: each cached outside the clone and skipped when done. */
async function main(): Promise<void> {
  const forTests = process.argv.includes('--for-tests');
  const { cacheDir } = loadConfig();
  const log = (line: string): void => console.log(`setup: ${line}`);
  const [temporal, python, s3, chromium, , lerobot] = await Promise.all([
    ensureTemporalCli(cacheDir, log),
    ensurePythonEnv(cacheDir, log),
    forTests ? ensureVersitygw({ cacheDir, log }) : Promise.resolve(undefined),
    ensureChromium(log),
    // The cluster tests' Temporal server and its schema tool: built here, where the Go proxy is reachable.
    forTests ? ensureTemporalSqlTool(cacheDir, log).then(() => ensureTemporalServer(cacheDir, log)) : Promise.resolve(undefined),
    // The LeRobot import/export tests' own environment; `npm start` never builds it (docs/dataset-format.md, "The LeRobot environment").
    forTests ? ensureLeRobotEnv(cacheDir, log) : Promise.resolve(undefined),
  ]);
  log(`temporal CLI: ${temporal}`);
  log(`python env:   ${python.venvDir}`);
  if (s3) log(`S3 server:    ${s3}`);
  if (lerobot) log(`lerobot env:  ${lerobot.venvDir}`);
  log(`chromium:     ${chromium}`);
}

main().catch((err: unknown) => {
  console.error(`setup failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
