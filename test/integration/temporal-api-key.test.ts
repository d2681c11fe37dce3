import { NativeConnection } from '@temporalio/worker';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificate } from '../../infra/cluster/certs';
import { connectClient, connectWorker } from '../../infra/temporal';
import { ConnectionErrorCode, explainConnectionError, loadTemporalConnection, TemporalConnectionError, type TemporalConnectionSettings } from '../../infra/temporal-connection';
import { startCloudServer, type CloudServer } from '../fixtures/temporal-cloud-server';
import { quietRuntime } from '../helpers/temporal';

const API_KEY = 'tck_right-key-0a1b2c3d4e5f';
const WRONG_KEY = 'tck_wrong-key-9f8e7d6c5b4a';

/**
 * API keys the way Temporal Cloud takes them: TLS, `authorization: Bearer <key>` on every call, and
 * UNAUTHENTICATED for a wrong key; against a local gRPC server speaking the WorkflowService wire
 * format (test/fixtures/temporal-cloud-server.ts).
 */
describe('Temporal API keys (Cloud-like gRPC server)', () => {
  let dir: string;
  let home: string;
  let caFile: string;
  let cloud: CloudServer;

  beforeAll(async () => {
    quietRuntime();
    dir = mkdtempSync(join(tmpdir(), 'vla-cloud-'));
    home = mkdtempSync(join(dir, 'home-'));
    const ca = await createCertificateAuthority(join(dir, 'ca'));
    caFile = ca.certFile;
    const cert = await issueCertificate(ca, join(dir, 'certs'), { name: 'cloud', usage: 'server', dnsNames: ['ns.acct.tmprl.test'], ipAddresses: ['127.0.0.1'] });
    cloud = await startCloudServer({ apiKey: API_KEY, namespace: 'ns.acct', certFile: cert.certFile, keyFile: cert.keyFile });
  });
  afterAll(async () => {
    await cloud?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function settings(env: NodeJS.ProcessEnv): TemporalConnectionSettings {
    return loadTemporalConnection({ env: { HOME: home, TEMPORAL_ADDRESS: cloud.address, TEMPORAL_NAMESPACE: 'ns.acct', TEMPORAL_TLS_SERVER_CA_CERT_PATH: caFile, TEMPORAL_TLS_SERVER_NAME: 'ns.acct.tmprl.test', ...env } });
  }

  it('the key travels as `authorization: Bearer <key>` over TLS, from a client and a worker', async () => {
    cloud.calls.length = 0;
    const s = settings({ TEMPORAL_API_KEY: API_KEY });
    await (await connectClient(s)).close();
    await (await connectWorker(s)).close();
    const methods = cloud.calls.map((c) => c.method);
    expect(methods).toContain('GetSystemInfo');
    expect(methods).toContain('DescribeNamespace');
    expect(cloud.calls.every((c) => c.authorization === `Bearer ${API_KEY}`)).toBe(true);
    expect(cloud.calls.find((c) => c.method === 'DescribeNamespace')?.namespace).toBe('ns.acct');
  });

  it('a wrong key: CREDENTIALS_REJECTED at once, for the client and the worker, the key never shown', async () => {
    const s = settings({ TEMPORAL_API_KEY: WRONG_KEY });
    const err: unknown = await connectClient(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TemporalConnectionError);
    const failure = err as TemporalConnectionError;
    expect(failure.code).toBe(ConnectionErrorCode.CREDENTIALS_REJECTED);
    expect(failure.message).toContain('Temporal profile "default"');
    expect(failure.message).toContain('the server rejected the API key');
    expect(failure.message).not.toContain(WRONG_KEY);

    const native: unknown = await NativeConnection.connect(s.connectionOptions).then(
      async (c) => {
        await c.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    const workerFailure = explainConnectionError(native, s);
    expect(workerFailure.code, workerFailure.message).toBe(ConnectionErrorCode.CREDENTIALS_REJECTED);
    expect(workerFailure.message).not.toContain(WRONG_KEY);
  });

  it('no key where one is required: CREDENTIALS_REJECTED, asking for one', async () => {
    const err: unknown = await connectClient(settings({})).catch((e: unknown) => e);
    expect((err as TemporalConnectionError).code).toBe(ConnectionErrorCode.CREDENTIALS_REJECTED);
    expect((err as TemporalConnectionError).message).toContain('set TEMPORAL_API_KEY');
  });

  it('a profile with an api_key: its name in the message, a wrong namespace found as such', async () => {
    const file = join(dir, 'temporal.toml');
    writeFileSync(
      file,
      ['[profile.cloud]', `address = "${cloud.address}"`, 'namespace = "other.acct"', `api_key = "${API_KEY}"`, '[profile.cloud.tls]', `server_ca_cert_path = "${caFile}"`, 'server_name = "ns.acct.tmprl.test"', ''].join('\n'),
    );
    const s = loadTemporalConnection({ env: { HOME: home, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud' } });
    const err: unknown = await connectClient(s).catch((e: unknown) => e);
    expect((err as TemporalConnectionError).code).toBe(ConnectionErrorCode.NAMESPACE_NOT_FOUND);
    expect((err as TemporalConnectionError).message).toContain(`Temporal profile "cloud" (config file ${file}`);
    expect((err as TemporalConnectionError).message).not.toContain(API_KEY);

    // The worker's Rust connection names status codes in words; the same cause comes out.
    const native = await NativeConnection.connect(s.connectionOptions);
    try {
      const nativeErr: unknown = await native.workflowService.describeNamespace({ namespace: s.namespace }).catch((e: unknown) => e);
      expect(explainConnectionError(nativeErr, s).code).toBe(ConnectionErrorCode.NAMESPACE_NOT_FOUND);
    } finally {
      await native.close();
    }
  });
});
