import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificate, type CertificateFiles } from '../../infra/cluster/certs';
import { loadConfig } from '../../infra/config';
import {
  ConnectionErrorCode,
  explainConnectionError,
  isLocalDevServer,
  loadTemporalConnection,
  TemporalConnectionError,
  type TemporalConnectionSettings,
} from '../../infra/temporal-connection';

/** The error `fn` throws, which must be a TemporalConnectionError. */
function connectionError(fn: () => unknown): TemporalConnectionError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TemporalConnectionError);
    return err as TemporalConnectionError;
  }
  throw new Error('expected a TemporalConnectionError');
}

const API_KEY = 'tck_unit-test-api-key-7f3a9b';

/**
 * Where the settings come from, on real files: the TOML config file (default path or
 * TEMPORAL_CONFIG_FILE) and its profile (TEMPORAL_PROFILE), then the TEMPORAL_* variables on top,
 * then the project's fallbacks. No server is needed.
 */
describe('Temporal connection settings (envconfig)', () => {
  let dir: string;
  let ca: string;
  let client: CertificateFiles;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vla-envconfig-'));
    const authority = await createCertificateAuthority(join(dir, 'ca'));
    ca = authority.certFile;
    client = await issueCertificate(authority, join(dir, 'certs'), { name: 'worker', usage: 'client' });
  });

  /** A home folder with `~/.config/temporalio/temporal.toml` holding `toml` (none when undefined). */
  function home(toml?: string): string {
    const h = mkdtempSync(join(dir, 'home-'));
    if (toml !== undefined) {
      mkdirSync(join(h, '.config', 'temporalio'), { recursive: true });
      writeFileSync(join(h, '.config', 'temporalio', 'temporal.toml'), toml);
    }
    return h;
  }

  it('falls back to the local dev stack (127.0.0.1:7233, namespace vla) when nothing is set', () => {
    const settings = loadTemporalConnection({ env: { HOME: home() } });
    expect(settings.connectionOptions.address).toBe('127.0.0.1:7233');
    expect(settings.namespace).toBe('vla');
    expect(settings.profile).toBe('default');
    expect(settings.connectionOptions.tls).toBeUndefined();
    expect(settings.connectionOptions.apiKey).toBeUndefined();
    expect(settings.source).toMatch(/config file .*temporal\.toml \(absent\); no TEMPORAL_\* variables/);
    expect(isLocalDevServer(settings)).toBe(true);
  });

  it('reads the default profile of the default config file, and the variables override it field by field', () => {
    const h = home(['[profile.default]', 'address = "temporal.example.com:7233"', 'namespace = "research"', ''].join('\n'));
    const fromFile = loadTemporalConnection({ env: { HOME: h } });
    expect(fromFile.connectionOptions.address).toBe('temporal.example.com:7233');
    expect(fromFile.namespace).toBe('research');
    expect(isLocalDevServer(fromFile)).toBe(false);

    const overridden = loadTemporalConnection({ env: { HOME: h, TEMPORAL_NAMESPACE: 'other' } });
    expect(overridden.connectionOptions.address).toBe('temporal.example.com:7233');
    expect(overridden.namespace).toBe('other');
    expect(overridden.source).toContain('environment TEMPORAL_NAMESPACE');

    // The project's own dev servers ignore the file.
    expect(loadTemporalConnection({ env: { HOME: h }, disableFile: true }).connectionOptions.address).toBe('127.0.0.1:7233');
  });

  it('TEMPORAL_CONFIG_FILE and TEMPORAL_PROFILE pick the file and the profile; mTLS files are read from the profile, server name from the variable', () => {
    const file = join(dir, 'team.toml');
    writeFileSync(
      file,
      [
        '[profile.default]',
        'address = "127.0.0.1:7233"',
        '[profile.cluster]',
        'address = "10.0.0.5:7233"',
        'namespace = "vla-prod"',
        '[profile.cluster.tls]',
        `server_ca_cert_path = "${ca}"`,
        `client_cert_path = "${client.certFile}"`,
        `client_key_path = "${client.keyFile}"`,
        'server_name = "frontend.internal"',
        '',
      ].join('\n'),
    );
    const settings = loadTemporalConnection({ env: { HOME: home(), TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cluster', TEMPORAL_TLS_SERVER_NAME: 'temporal.internal' } });
    expect(settings.profile).toBe('cluster');
    expect(settings.connectionOptions.address).toBe('10.0.0.5:7233');
    expect(settings.namespace).toBe('vla-prod');
    const tls = settings.connectionOptions.tls;
    if (typeof tls !== 'object' || tls === null) throw new Error('expected a TLS config');
    expect(Buffer.from(tls.serverRootCACertificate!).toString()).toBe(readFileSync(ca, 'utf8'));
    expect(Buffer.from(tls.clientCertPair!.crt).toString()).toBe(readFileSync(client.certFile, 'utf8'));
    expect(tls.serverNameOverride).toBe('temporal.internal');
    expect(settings.description).toContain(`mutual TLS (client certificate ${client.certFile}, key ${client.keyFile})`);
    expect(settings.description).toContain('Temporal profile "cluster"');
    // Paths only: the key itself never reaches a description.
    expect(settings.description).not.toContain(readFileSync(client.keyFile, 'utf8').split('\n')[1]!);

    // TEMPORAL_TLS=false turns the profile's TLS off.
    const plain = loadTemporalConnection({ env: { HOME: home(), TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cluster', TEMPORAL_TLS: 'false' } });
    expect(plain.connectionOptions.tls).toBe(false);
  });

  it('an API key turns TLS on and is never part of the description', () => {
    const h = home(['[profile.default]', 'address = "ns.acct.tmprl.cloud:7233"', 'namespace = "ns.acct"', `api_key = "${API_KEY}"`, ''].join('\n'));
    const settings = loadTemporalConnection({ env: { HOME: h } });
    expect(settings.connectionOptions.apiKey).toBe(API_KEY);
    expect(settings.connectionOptions.tls).toBe(true);
    expect(settings.description).toContain('API key set');
    expect(settings.description).not.toContain(API_KEY);
    expect(isLocalDevServer(settings)).toBe(false);
    // A key from the environment wins over the profile's.
    expect(loadTemporalConnection({ env: { HOME: h, TEMPORAL_API_KEY: 'tck_from-env' } }).connectionOptions.apiKey).toBe('tck_from-env');
  });

  it('a malformed config file fails naming the profile, the file and the line, without quoting its lines', () => {
    const h = home(['[profile.default]', `api_key = "${API_KEY}"`, 'address = "127.0.0.1:7233', ''].join('\n'));
    const err = connectionError(() => loadTemporalConnection({ env: { HOME: h } }));
    expect(err.code).toBe(ConnectionErrorCode.CONFIG_INVALID);
    expect(err.message).toContain('Temporal profile "default"');
    expect(err.message).toContain(join(h, '.config', 'temporalio', 'temporal.toml'));
    expect(err.message).toMatch(/malformed config file: .*line 3/);
    expect(err.message).not.toContain(API_KEY);
  });

  it('an empty config file is no settings; a file without a profile table is refused, naming it', () => {
    const empty = join(dir, 'empty.toml');
    writeFileSync(empty, '# nothing yet\n\n');
    expect(loadTemporalConnection({ env: { HOME: home(), TEMPORAL_CONFIG_FILE: empty } }).connectionOptions.address).toBe('127.0.0.1:7233');
    const tableless = join(dir, 'tableless.toml');
    writeFileSync(tableless, 'address = "127.0.0.1:7233"\n');
    const err = connectionError(() => loadTemporalConnection({ env: { HOME: home(), TEMPORAL_CONFIG_FILE: tableless } }));
    expect(err.code).toBe(ConnectionErrorCode.CONFIG_INVALID);
    expect(err.message).toContain(`the config file ${tableless} has no [profile.<name>] table`);
  });

  it('a profile asked for by name must exist', () => {
    const h = home('[profile.default]\naddress = "127.0.0.1:7233"\n');
    const err = connectionError(() => loadTemporalConnection({ env: { HOME: h, TEMPORAL_PROFILE: 'staging' } }));
    expect(err.code).toBe(ConnectionErrorCode.CONFIG_INVALID);
    expect(err.message).toMatch(/Temporal profile "staging" .*no such profile in .*temporal\.toml/);
  });

  it('a missing certificate file fails at once, naming the file, its variable and the profile', () => {
    const err = connectionError(() =>
      loadTemporalConnection({ env: { HOME: home(), TEMPORAL_TLS_CLIENT_CERT_PATH: client.certFile, TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'nope-key.pem') } }),
    );
    expect(err.code).toBe(ConnectionErrorCode.FILE_UNREADABLE);
    expect(err.message).toMatch(/Temporal profile "default" .*TEMPORAL_TLS_CLIENT_KEY_PATH.*: cannot read the TLS client key file .*nope-key\.pem .*ENOENT/);
  });

  it('a client certificate without its key, and host verification off, are refused instead of silently dropped', () => {
    const half = connectionError(() => loadTemporalConnection({ env: { HOME: home(), TEMPORAL_TLS_CLIENT_CERT_PATH: client.certFile } }));
    expect(half.code).toBe(ConnectionErrorCode.CONFIG_INVALID);
    expect(half.message).toContain('client certificate is set without its key');
    const noVerify = connectionError(() => loadTemporalConnection({ env: { HOME: home(), TEMPORAL_TLS: 'true', TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' } }));
    expect(noVerify.message).toContain('TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported');
  });

  it('explains a failure without the API key, inline key data or any PEM block', () => {
    const keyPem = readFileSync(client.keyFile, 'utf8');
    const settings: TemporalConnectionSettings = loadTemporalConnection({
      env: { HOME: home(), TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS_CLIENT_CERT_PATH: client.certFile, TEMPORAL_TLS_CLIENT_KEY_DATA: keyPem },
    });
    const failure = Object.assign(new Error(`16 UNAUTHENTICATED: bad key ${API_KEY} for ${keyPem}`), { code: 16 });
    const explained = explainConnectionError(failure, settings);
    expect(explained.code).toBe(ConnectionErrorCode.CREDENTIALS_REJECTED);
    expect(explained.message).toContain('the server rejected the API key');
    expect(explained.message).not.toContain(API_KEY);
    expect(explained.message).not.toContain('PRIVATE KEY');
    expect(explained.message).not.toContain(keyPem.split('\n')[1]!);
    expect(settings.description).toContain('key inline data');
  });

  it('loadConfig hands out the settings of the environment it was given, loaded on first use', () => {
    const h = home('this is not toml');
    // Commands that never talk to Temporal do not trip over a broken config file.
    const config = loadConfig({ HOME: h, VLA_STATE_DIR: join(dir, 'state') });
    expect(() => config.temporal()).toThrow(/malformed config file/);
    const ok = loadConfig({ HOME: home(), VLA_STATE_DIR: join(dir, 'state'), TEMPORAL_ADDRESS: '127.0.0.1:17233', TEMPORAL_NAMESPACE: 'x' });
    expect(ok.temporal().connectionOptions.address).toBe('127.0.0.1:17233');
    expect(ok.temporal().namespace).toBe('x');
  });
});
