import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MULTI_HOST_NEEDS_S3 } from '../../data-schemas/config';
import { hostEnvironment, hostPaths, HostSpec, startHost } from '../../infra/cluster/hosts';
import { HostName } from '../../infra/cluster/network';

const dir = mkdtempSync(join(tmpdir(), 'vla-hosts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('worker hosts (infra/cluster/hosts.ts)', () => {
  const parent: NodeJS.ProcessEnv = {
    PATH: '/usr/bin',
    HOME: '/root',
    TEMPORAL_ADDRESS: '10.213.1.1:7233',
    TEMPORAL_NAMESPACE: 'vla',
    TEMPORAL_TLS_CLIENT_CERT_PATH: '/certs/worker.pem',
    AWS_ACCESS_KEY_ID: 'id',
    AWS_SECRET_ACCESS_KEY: 'secret',
    AWS_ENDPOINT_URL_S3: 'http://10.213.1.1:7070',
    VLA_STORE_URI: 's3://vla-data/store',
    GEMINI_API_KEY: 'AIzaTEST',
    OPENAI_API_KEY: 'sk-test',
    SSH_AUTH_SOCK: '/tmp/agent',
    VLA_STATE_DIR: '/srv/caller-state',
  };

  it("a host's environment: connection, store and its kind's keys; its own scratch; never the caller's whole environment", () => {
    const paths = hostPaths('/srv/state', 'gem1');
    const env = hostEnvironment('gemini', paths, parent);
    expect(env).toMatchObject({
      TEMPORAL_ADDRESS: '10.213.1.1:7233',
      TEMPORAL_NAMESPACE: 'vla',
      TEMPORAL_TLS_CLIENT_CERT_PATH: '/certs/worker.pem',
      AWS_SECRET_ACCESS_KEY: 'secret',
      VLA_STORE_URI: 's3://vla-data/store',
      GEMINI_API_KEY: 'AIzaTEST',
      VLA_STATE_DIR: '/srv/state/cluster/hosts/gem1',
      VLA_WORK_DIR: '/srv/state/cluster/hosts/gem1/work',
      VLA_MULTI_HOST: '1',
    });
    expect(env.SSH_AUTH_SOCK).toBeUndefined();
    expect(env.OPENAI_API_KEY).toBeUndefined();
    expect(hostEnvironment('cpu', paths, parent).GEMINI_API_KEY).toBeUndefined();
  });

  it('refuses a host whose store would be file://, before creating anything', async () => {
    const stateDir = join(dir, 'state');
    const { VLA_STORE_URI: _unused, ...withoutStore } = parent;
    await expect(startHost(stateDir, { name: 'cpu1', kind: 'cpu' }, { env: withoutStore, isolation: 'processes' })).rejects.toThrow(MULTI_HOST_NEEDS_S3);
    expect(existsSync(join(stateDir, 'cluster'))).toBe(false);
  });

  it('names are bounded (a veth name has at most 15 characters) and a station host needs its id', () => {
    expect(HostName.safeParse('gemini-2').success).toBe(true);
    expect(HostName.safeParse('a-very-long-host').success).toBe(false);
    expect(HostName.safeParse('Gem').success).toBe(false);
    expect(HostSpec.safeParse({ name: 'arm1', kind: 'station' }).success).toBe(false);
    expect(HostSpec.safeParse({ name: 'arm1', kind: 'station', stationId: 'widowx-1' }).success).toBe(true);
    expect(HostSpec.safeParse({ name: 'cpu1', kind: 'cpu', stationId: 'widowx-1' }).success).toBe(false);
  });
});
