import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { createBucket, ensureVersitygw, startS3Server } from '../../infra/s3-server';

export interface ProvidedS3 {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  /** Server stdout/stderr, for diagnosing a failing test. */
  logFile: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    s3: ProvidedS3;
  }
}

export const TEST_BUCKET = 'vla-test';

/** One real S3-compatible server (versitygw) for the suite, on a free loopback port, stopped by PID. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'vla-s3-'));
  const binary = await ensureVersitygw({ log: (line) => console.log(`[s3] ${line}`) });
  const server = await startS3Server({ binary, dataDir: join(dir, 'data'), logFile: join(dir, 'versitygw.log') });
  try {
    await createBucket(server, TEST_BUCKET);
  } catch (err) {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  project.provide('s3', {
    endpoint: server.endpoint,
    region: server.region,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    bucket: TEST_BUCKET,
    logFile: server.logFile,
  });
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
