import { NativeConnection } from '@temporalio/worker';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../infra/config';
import { connectClient, connectWorker, explainWorkerConnectionError } from '../../infra/temporal';
import { ConnectionErrorCode, loadTemporalConnection, TemporalConnectionError, type TemporalConnectionSettings } from '../../infra/temporal-connection';
import { quietRuntime } from '../helpers/temporal';
import { startTlsTemporal, type TlsTemporal } from '../helpers/tls-temporal';

/**
 * Mutual TLS against the real Temporal server (go.temporal.io/server v1.29.1, frontend TLS with
 * required client certificates): the right CA and client certificate connect, for a client and a
 * worker; every wrong setting fails in one attempt with its own cause, naming the profile, and no
 * message holds key material.
 */
describe('Temporal over mutual TLS (real server)', () => {
  let dir: string;
  let server: TlsTemporal;
  let home: string;
  let keyTexts: string[];

  beforeAll(async () => {
    quietRuntime();
    dir = mkdtempSync(join(tmpdir(), 'vla-tls-'));
    home = mkdtempSync(join(dir, 'home-'));
    server = await startTlsTemporal({ dir, cacheDir: loadConfig().cacheDir, namespace: 'vla-tls' });
    // The base64 body of every private key in play: none may appear in a message.
    keyTexts = [server.client, server.expiredClient, server.strangerClient].flatMap((c) => readFileSync(c.keyFile, 'utf8').split('\n').filter((line) => line !== '' && !line.startsWith('-----')));
    // Building the server once takes minutes; it is cached afterwards (TEMPORAL_SERVER_PATH skips it).
  }, 1_800_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Settings as a worker host would set them: the variables only (no config file in this HOME). */
  function settings(overrides: Record<string, string | undefined> = {}): TemporalConnectionSettings {
    const env: NodeJS.ProcessEnv = {
      HOME: home,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: server.namespace,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: server.caFile,
      TEMPORAL_TLS_SERVER_NAME: server.serverName,
      TEMPORAL_TLS_CLIENT_CERT_PATH: server.client.certFile,
      TEMPORAL_TLS_CLIENT_KEY_PATH: server.client.keyFile,
      ...overrides,
    };
    for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];
    return loadTemporalConnection({ env });
  }

  function expectNoKeyMaterial(text: string): void {
    expect(text).not.toContain('PRIVATE KEY');
    for (const line of keyTexts) expect(text).not.toContain(line);
  }

  async function clientFailure(s: TemporalConnectionSettings): Promise<TemporalConnectionError> {
    const err: unknown = await connectClient(s, { timeoutMs: 15_000 }).then(
      async (connection) => {
        await connection.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TemporalConnectionError);
    const failure = err as TemporalConnectionError;
    expect(failure.message).toContain('Temporal profile "default"');
    expect(failure.message).toContain(server.address);
    expectNoKeyMaterial(failure.message);
    return failure;
  }

  /**
   * The worker's own (Rust) connection, without the check in front: its errors are classified the
   * same way (an ambiguous transport error is diagnosed again with the client check).
   */
  async function workerFailure(s: TemporalConnectionSettings): Promise<TemporalConnectionError> {
    const err: unknown = await NativeConnection.connect(s.connectionOptions).then(
      async (connection) => {
        await connection.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err, 'the worker connection should fail').toBeDefined();
    const failure = await explainWorkerConnectionError(err, s);
    expectNoKeyMaterial(failure.message);
    return failure;
  }

  it('the right CA and client certificate connect a client and a worker', async () => {
    const good = settings();
    const client = await connectClient(good);
    try {
      const described = await client.workflowService.describeNamespace({ namespace: server.namespace });
      expect(described.namespaceInfo?.name).toBe('vla-tls');
    } finally {
      await client.close();
    }
    const worker = await connectWorker(good);
    try {
      const info = await worker.workflowService.getSystemInfo({});
      expect(info.serverVersion).toBe('1.29.1');
    } finally {
      await worker.close();
    }
  });

  it('a server certificate from an unknown CA: SERVER_CERT_UNTRUSTED', async () => {
    const s = settings({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: server.otherCaFile });
    const failure = await clientFailure(s);
    expect(failure.code).toBe(ConnectionErrorCode.SERVER_CERT_UNTRUSTED);
    expect(failure.message).toContain('TEMPORAL_TLS_SERVER_CA_CERT_PATH');
    expect((await workerFailure(s)).code).toBe(ConnectionErrorCode.SERVER_CERT_UNTRUSTED);
  });

  it('no client certificate where the server requires one: CLIENT_CERT_REQUIRED', async () => {
    const s = settings({ TEMPORAL_TLS_CLIENT_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined });
    const failure = await clientFailure(s);
    expect(failure.code).toBe(ConnectionErrorCode.CLIENT_CERT_REQUIRED);
    expect(failure.message).toContain('requires a client certificate');
    expect((await workerFailure(s)).code).toBe(ConnectionErrorCode.CLIENT_CERT_REQUIRED);
  });

  it('an expired client certificate: CLIENT_CERT_EXPIRED', async () => {
    const s = settings({ TEMPORAL_TLS_CLIENT_CERT_PATH: server.expiredClient.certFile, TEMPORAL_TLS_CLIENT_KEY_PATH: server.expiredClient.keyFile });
    const failure = await clientFailure(s);
    expect(failure.code).toBe(ConnectionErrorCode.CLIENT_CERT_EXPIRED);
    expect((await workerFailure(s)).code).toBe(ConnectionErrorCode.CLIENT_CERT_EXPIRED);
  });

  it('a client certificate from another CA: CLIENT_CERT_REJECTED', async () => {
    const s = settings({ TEMPORAL_TLS_CLIENT_CERT_PATH: server.strangerClient.certFile, TEMPORAL_TLS_CLIENT_KEY_PATH: server.strangerClient.keyFile });
    const failure = await clientFailure(s);
    expect(failure.code).toBe(ConnectionErrorCode.CLIENT_CERT_REJECTED);
    expect((await workerFailure(s)).code).toBe(ConnectionErrorCode.CLIENT_CERT_REJECTED);
  });

  it('a server name the certificate does not hold: SERVER_NAME_MISMATCH', async () => {
    const s = settings({ TEMPORAL_TLS_SERVER_NAME: 'temporal.example.com' });
    const failure = await clientFailure(s);
    expect(failure.code).toBe(ConnectionErrorCode.SERVER_NAME_MISMATCH);
    expect(failure.message).toContain('TEMPORAL_TLS_SERVER_NAME=temporal.example.com');
    expect((await workerFailure(s)).code).toBe(ConnectionErrorCode.SERVER_NAME_MISMATCH);
  });

  it('a plain-TCP client against the TLS server: TLS_MISMATCH', async () => {
    const s = settings({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: undefined, TEMPORAL_TLS_SERVER_NAME: undefined, TEMPORAL_TLS_CLIENT_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined });
    const failure = await clientFailure(s);
    expect(failure.code).toBe(ConnectionErrorCode.TLS_MISMATCH);
    expect(failure.message).toContain('it may require TLS');
  });

  it('a TOML profile with the key inline connects, and its failures name that profile without quoting the key', async () => {
    const file = join(dir, 'temporal.toml');
    const inline = (path: string): string => JSON.stringify(readFileSync(path, 'utf8'));
    writeFileSync(
      file,
      [
        '[profile.tls-test]',
        `address = "${server.address}"`,
        `namespace = "${server.namespace}"`,
        '[profile.tls-test.tls]',
        `server_ca_cert_path = "${server.caFile}"`,
        `server_name = "${server.serverName}"`,
        `client_cert_data = ${inline(server.client.certFile)}`,
        `client_key_data = ${inline(server.client.keyFile)}`,
        '[profile.expired]',
        `address = "${server.address}"`,
        `namespace = "${server.namespace}"`,
        '[profile.expired.tls]',
        `server_ca_cert_path = "${server.caFile}"`,
        `server_name = "${server.serverName}"`,
        `client_cert_data = ${inline(server.expiredClient.certFile)}`,
        `client_key_data = ${inline(server.expiredClient.keyFile)}`,
        '',
      ].join('\n'),
    );
    const good = loadTemporalConnection({ env: { HOME: home, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'tls-test' } });
    expect(good.description).toContain('client certificate inline data, key inline data');
    expectNoKeyMaterial(good.description);
    await (await connectClient(good)).close();

    const expired = loadTemporalConnection({ env: { HOME: home, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'expired' } });
    const err: unknown = await connectClient(expired).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TemporalConnectionError);
    expect((err as TemporalConnectionError).code).toBe(ConnectionErrorCode.CLIENT_CERT_EXPIRED);
    expect((err as TemporalConnectionError).message).toContain(`Temporal profile "expired" (config file ${file}`);
    expectNoKeyMaterial((err as TemporalConnectionError).message);
  });
});
