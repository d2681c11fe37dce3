import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { REPO_ROOT } from '../../infra/config';
import { isAlive, startProcess, tailFile } from '../../activities/runtime/processes';

/** One line of the Gemini host's request log (test/fixtures/cluster/gemini-host.ts). */
export const GeminiRequestEvent = z.strictObject({ event: z.enum(['arrived', 'answered']), seq: z.int(), prompt: z.string().optional(), from: z.string().optional() });
export type GeminiRequestEvent = z.infer<typeof GeminiRequestEvent>;

export interface GeminiHost {
  pid: number;
  /** Every request so far, from the log: `arrived` as it comes, `answered` when its reply is chosen. */
  requests(): GeminiRequestEvent[];
}

/**
 * The Gemini wire server as a model host: a process of its own in the network namespace `netns`,
 * listening on `host:port`, logging each request (with the address that sent it) under `dir`.
 * Resolves once it is ready.
 */
export async function startGeminiHost(options: { dir: string; netns: string; host: string; port: number; apiKey: string; latencyMs: number }): Promise<GeminiHost> {
  const requestLog = join(options.dir, 'gemini-requests.jsonl');
  writeFileSync(requestLog, '');
  const logFile = join(options.dir, 'gemini-host.log');
  const { pid } = startProcess(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'test', 'fixtures', 'cluster', 'gemini-host.ts')], {
    logFile,
    detached: true,
    cwd: REPO_ROOT,
    netns: options.netns,
    env: {
      PATH: process.env.PATH,
      GEMINI_REQUEST_LOG: requestLog,
      GEMINI_EXPECTED_KEY: options.apiKey,
      GEMINI_LISTEN_HOST: options.host,
      GEMINI_LISTEN_PORT: String(options.port),
      GEMINI_LATENCY_MS: String(options.latencyMs),
    },
  });
  while (!readFileSync(logFile, 'utf8').includes('ready ')) {
    if (!isAlive(pid)) throw new Error(`the Gemini host exited:\n${tailFile(logFile)}`);
    await sleep(200);
  }
  return {
    pid,
    requests: () =>
      readFileSync(requestLog, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => GeminiRequestEvent.parse(JSON.parse(line))),
  };
}
