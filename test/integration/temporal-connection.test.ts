import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from '../../infra/config';
import { connectClient, connectWorker } from '../../infra/temporal';
import { ConnectionErrorCode, loadTemporalConnection, TemporalConnectionError } from '../../infra/temporal-connection';
import { closedPort } from '../helpers/net';
import { devServerEnv, quietRuntime } from '../helpers/temporal';

const run = promisify(execFile);
const API_KEY = 'tck_never-log-me-4d2c81';

/**
 * Connection failures against the suite's dev server, each named by cause and profile, at once:
 * in the library (client and worker connection) and as the CLI's exit status and message.
 */
describe('Temporal connection errors (suite dev server)', () => {
  let dir: string;
  let home: string;
  let address: string;
  let namespace: string;

  beforeAll(() => {
    quietRuntime();
    dir = mkdtempSync(join(tmpdir(), 'vla-connect-'));
    home = mkdtempSync(join(dir, 'home-'));
    ({ address, namespace } = inject('temporal'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const load = (env: NodeJS.ProcessEnv) => loadTemporalConnection({ env: { HOME: home, ...env } });

  async function failure(promise: Promise<{ close(): Promise<void> }>): Promise<TemporalConnectionError> {
    const err: unknown = await promise.then(
      async (connection) => {
        await connection.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TemporalConnectionError);
    return err as TemporalConnectionError;
  }

  it('the settings from the variables connect a client and a worker', async () => {
    const settings = load({ TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace });
    await (await connectClient(settings)).close();
    await (await connectWorker(settings)).close();
  });

  it('a namespace the server does not have: NAMESPACE_NOT_FOUND, for the client and the worker', async () => {
    const settings = load({ TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'no-such-namespace' });
    for (const err of [await failure(connectClient(settings)), await failure(connectWorker(settings))]) {
      expect(err.code).toBe(ConnectionErrorCode.NAMESPACE_NOT_FOUND);
      expect(err.message).toContain('Temporal profile "default" (config file');
      expect(err.message).toContain('environment TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE');
      expect(err.message).toContain('namespace "no-such-namespace" does not exist');
    }
  });

  it('a closed port: UNREACHABLE, in one attempt', async () => {
    const port = await closedPort();
    const settings = load({ TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    const err = await failure(connectClient(settings));
    expect(err.code).toBe(ConnectionErrorCode.UNREACHABLE);
    expect(err.message).toContain(`nothing answers at 127.0.0.1:${port}`);
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('an API key against a server without TLS fails (the key turns TLS on) and is never shown', async () => {
    const settings = load({ TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, TEMPORAL_API_KEY: API_KEY });
    const err = await failure(connectClient(settings));
    expect(err.code).toBe(ConnectionErrorCode.TLS_MISMATCH);
    expect(err.message).toContain('TEMPORAL_API_KEY');
    expect(err.message).not.toContain(API_KEY);
  });

  describe('the CLI exits non-zero with the message', () => {
    const vla = (env: NodeJS.ProcessEnv, ...args: string[]) =>
      run(join(REPO_ROOT, 'cli', 'vla.sh'), args, { env: { ...clean, HOME: home, VLA_STATE_DIR: join(dir, 'state'), ...env }, cwd: REPO_ROOT, timeout: 120_000 }).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
      );
    // A user's own TEMPORAL_* variables must not leak into these runs.
    const { TEMPORAL_ADDRESS: _address, TEMPORAL_NAMESPACE: _namespace, TEMPORAL_CONFIG_FILE: _file, ...clean } = devServerEnv('unused:1', 'unused');

    it('a worker with a wrong namespace', async () => {
      const result = await vla({ TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'no-such-namespace' }, 'worker', 'cpu');
      expect(result.code).toBe(1);
      expect(result.out).toMatch(/error: Temporal profile "default" .*namespace "no-such-namespace" does not exist .*\[NAMESPACE_NOT_FOUND/);
    });

    it('a worker whose config file is malformed, quoting neither the file nor the key', async () => {
      const file = join(dir, 'broken.toml');
      writeFileSync(file, ['[profile.team]', `api_key = "${API_KEY}"`, `address = "${address}`, ''].join('\n'));
      const result = await vla({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'team' }, 'worker', 'gemini');
      expect(result.code).toBe(1);
      expect(result.out).toContain(`error: Temporal profile "team" (config file ${file}; environment TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE): malformed config file`);
      expect(result.out).not.toContain(API_KEY);
    });

    it('a client command with a missing client key file', async () => {
      const missing = join(dir, 'missing-key.pem');
      const certFile = join(dir, 'client.pem');
      writeFileSync(certFile, 'not read: the key is checked first\n');
      const result = await vla({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS_CLIENT_CERT_PATH: certFile, TEMPORAL_TLS_CLIENT_KEY_PATH: missing }, 'schedule', 'pause');
      expect(result.code).toBe(1);
      expect(result.out).toContain(`cannot read the TLS client key file ${missing} (TEMPORAL_TLS_CLIENT_KEY_PATH or the profile's tls.client_key_path): ENOENT`);
    });

    it('`vla dev up` starts nothing for settings that name another server, and says what to do', async () => {
      const state = join(dir, 'remote-state');
      const result = await vla({ VLA_STATE_DIR: state, TEMPORAL_ADDRESS: 'temporal.example.com:7233', TEMPORAL_API_KEY: API_KEY }, 'dev', 'up');
      expect(result.code).toBe(1);
      expect(result.out).toContain('`vla dev up` only starts a local dev server');
      expect(result.out).toContain('vla worker cpu|gemini|gpu|station');
      expect(result.out).toContain('API key set');
      expect(result.out).not.toContain(API_KEY);
      expect(existsSync(join(state, 'pids', 'temporal.pid'))).toBe(false);
    });
  });
});
