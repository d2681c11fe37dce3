import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BRIDGE_SAMPLE, REPO_ROOT } from '../../infra/config';

const run = promisify(execFile);
const BRIDGE = BRIDGE_SAMPLE;

interface Outcome {
  code: number;
  out: string;
}

function vla(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  return run(join(REPO_ROOT, 'cli', 'vla.sh'), args, { env: { ...process.env, ...env }, cwd: REPO_ROOT, timeout: 120_000 }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
  );
}

/** Regular files under `root` (empty directories a failed write may leave hold no objects). */
function filesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** `vla data ...` as a user runs it: exit codes, one clear message, nothing half-written. */
// Each test runs the CLI as a fresh tsx process two or three times (10-14 s on an idle 2-core
// machine); 120 s per test leaves ~10x for a loaded one.
describe('vla data', { timeout: 120_000 }, () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vla-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('imports, simulates and validates on disk', async () => {
    const imported = await vla(['data', 'import', BRIDGE, '--out', join(dir, 'bridge'), '--name', 'bridge', '--limit', '3']);
    expect(imported.code, imported.out).toBe(0);
    expect(imported.out).toContain('imported 3 trajectories (30 steps');
    const simulated = await vla(['data', 'simulate', '--tasks', 'pick up the eggplant', '--n', '1', '--seed', '4', '--out', join(dir, 'sim'), '--name', 'sim']);
    expect(simulated.code, simulated.out).toBe(0);
    for (const ds of ['bridge', 'sim']) {
      const validated = await vla(['data', 'validate', join(dir, ds)]);
      expect(validated.code, validated.out).toBe(0);
    }
  });

  it('a corrupt TFRecord: exit 1, names the file and the record, leaves nothing behind', async () => {
    const corrupt = join(dir, 'corrupt.tfrecord');
    copyFileSync(BRIDGE, corrupt);
    const bytes = readFileSync(corrupt);
    bytes[400_000] = bytes[400_000]! ^ 0xff;
    writeFileSync(corrupt, bytes);
    const out = join(dir, 'from-corrupt');
    const r = await vla(['data', 'import', corrupt, '--out', out, '--name', 'x']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^error: .*corrupt\.tfrecord.*record 2/m);
    expect(r.out).toMatch(/CRC/i);
    expect(filesUnder(out)).toEqual([]);
  });

  it('a dataset that does not exist, a missing frame, an unknown task: exit 1 with the reason', async () => {
    const missing = await vla(['data', 'validate', join(dir, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.out).toContain('manifest.json missing');

    const sim = join(dir, 'sim');
    const frame = join(sim, 'frames', readdirSync(join(sim, 'frames'))[0]!, 'image_0', '005.jpg');
    rmSync(frame);
    const broken = await vla(['data', 'validate', sim]);
    expect(broken.code).toBe(1);
    expect(broken.out).toContain('image_0/005.jpg');

    const unknown = await vla(['data', 'simulate', '--tasks', 'juggle the oranges', '--out', join(dir, 'never'), '--name', 'never']);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toContain('put the carrot on the plate');
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  it('S3: imports and validates through the real server; wrong credentials get one clear message without the secret', async () => {
    const s3 = inject('s3');
    const good = { AWS_ENDPOINT_URL_S3: s3.endpoint, AWS_REGION: s3.region, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
    const uri = `s3://${s3.bucket}/cli-test/bridge`;
    const imported = await vla(['data', 'import', BRIDGE, '--out', uri, '--name', 'bridge', '--limit', '2'], good);
    expect(imported.code, imported.out).toBe(0);
    const validated = await vla(['data', 'validate', uri], good);
    expect(validated.code, validated.out).toBe(0);

    const secret = 'definitely-not-the-secret-0123456789';
    const bad = await vla(['data', 'validate', uri], { ...good, AWS_SECRET_ACCESS_KEY: secret });
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/^error: /m);
    expect(bad.out).toContain(s3.endpoint);
    expect(bad.out).not.toContain(secret);
  });
});
