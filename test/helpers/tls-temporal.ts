import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import getPort from 'get-port';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCertificateAuthority, issueCertificate, type CertificateFiles } from '../../infra/cluster/certs';
import { startProcess, stopProcess, tailFile } from '../../infra/processes';
import { goInstall } from '../../infra/tools';

/** The Temporal server release the cluster profile runs. */
const SERVER_VERSION = 'v1.29.1';

/**
 * The real Temporal server (go.temporal.io/server), not the CLI's dev server: `TEMPORAL_SERVER_PATH`,
 * else the copy built once into `<cacheDir>/bin/server-<version>/server` (never looked up on PATH:
 * `server` could be anything).
 */
export async function temporalServerBinary(cacheDir: string, log: (line: string) => void = () => {}): Promise<string> {
  const fromEnv = process.env.TEMPORAL_SERVER_PATH;
  if (fromEnv) return fromEnv;
  return goInstall(`go.temporal.io/server/cmd/server@${SERVER_VERSION}`, join(cacheDir, 'bin', `server-${SERVER_VERSION}`), 'server', log);
}

export interface TlsTemporal {
  address: string;
  namespace: string;
  /** The CA that issued the server's and the good clients' certificates. */
  caFile: string;
  /** A CA the server does not trust for clients (and that did not sign the server). */
  otherCaFile: string;
  /** The DNS name in the server's certificate (it also holds 127.0.0.1). */
  serverName: string;
  client: CertificateFiles;
  expiredClient: CertificateFiles;
  /** A client certificate from `otherCaFile`. */
  strangerClient: CertificateFiles;
  logFile: string;
  stop(): Promise<void>;
}

/**
 * A single-process Temporal server with in-memory SQLite and a TLS frontend that requires client
 * certificates (mutual TLS), on free loopback ports, with the namespace registered. A test fixture:
 * minimal on purpose (no UI, no metrics, no archival).
 */
export async function startTlsTemporal(options: { dir: string; cacheDir: string; namespace: string }): Promise<TlsTemporal> {
  const { dir } = options;
  const ca = await createCertificateAuthority(join(dir, 'ca'));
  const other = await createCertificateAuthority(join(dir, 'other-ca'), 'a CA nobody trusts');
  const certs = join(dir, 'certs');
  const serverName = 'frontend.vla.test';
  const server = await issueCertificate(ca, certs, { name: 'frontend', usage: 'server', dnsNames: [serverName, 'localhost'], ipAddresses: ['127.0.0.1'] });
  const systemWorker = await issueCertificate(ca, certs, { name: 'system-worker', usage: 'client' });
  const client = await issueCertificate(ca, certs, { name: 'worker', usage: 'client' });
  const expiredClient = await issueCertificate(ca, certs, { name: 'expired', usage: 'client', notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2020-01-02T00:00:00Z') });
  const strangerClient = await issueCertificate(other, join(dir, 'other-certs'), { name: 'stranger', usage: 'client' });

  const port = async (): Promise<number> => getPort({ host: '127.0.0.1' });
  const [frontend, frontendHttp, frontendMembership, history, historyMembership, matching, matchingMembership, worker, workerMembership] = [
    await port(), await port(), await port(), await port(), await port(), await port(), await port(), await port(), await port(),
  ];
  const sqlite = (name: string): string =>
    [`    ${name}:`, '      sql:', '        pluginName: sqlite', '        databaseName: default', '        connectAddr: localhost', '        connectProtocol: tcp',
      '        connectAttributes: { mode: memory, cache: private }', '        maxConns: 1', '        maxIdleConns: 1'].join('\n');
  const rpc = (grpc: number, membership: number, extra = ''): string => `    rpc: { grpcPort: ${grpc}, membershipPort: ${membership}, bindOnLocalHost: true${extra} }`;
  const configDir = join(dir, 'config');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(
    join(configDir, 'development.yaml'),
    [
      'log: { stdout: true, level: warn }',
      'persistence:',
      '  defaultStore: default',
      '  visibilityStore: visibility',
      '  numHistoryShards: 1',
      '  datastores:',
      sqlite('default'),
      sqlite('visibility'),
      'global:',
      '  membership: { maxJoinDuration: 30s, broadcastAddress: 127.0.0.1 }',
      '  tls:',
      '    frontend:',
      '      server:',
      `        certFile: ${server.certFile}`,
      `        keyFile: ${server.keyFile}`,
      '        requireClientAuth: true',
      `        clientCaFiles: [${ca.certFile}]`,
      '      client:',
      `        serverName: ${serverName}`,
      `        rootCaFiles: [${ca.certFile}]`,
      // The server's own system workers are clients of the frontend too.
      '    systemWorker:',
      `      certFile: ${systemWorker.certFile}`,
      `      keyFile: ${systemWorker.keyFile}`,
      '      client:',
      `        serverName: ${serverName}`,
      `        rootCaFiles: [${ca.certFile}]`,
      'services:',
      '  frontend:',
      rpc(frontend, frontendMembership, `, httpPort: ${frontendHttp}`),
      '  history:',
      rpc(history, historyMembership),
      '  matching:',
      rpc(matching, matchingMembership),
      '  worker:',
      rpc(worker, workerMembership),
      'clusterMetadata:',
      '  enableGlobalNamespace: false',
      '  failoverVersionIncrement: 10',
      '  masterClusterName: active',
      '  currentClusterName: active',
      '  clusterInformation:',
      '    active: { enabled: true, initialFailoverVersion: 1, rpcName: frontend, ' + `rpcAddress: "127.0.0.1:${frontend}", httpAddress: "127.0.0.1:${frontendHttp}" }`,
      'dcRedirectionPolicy: { policy: noop }',
      '',
    ].join('\n'),
  );
  const logFile = join(dir, 'temporal-server.log');
  const binary = await temporalServerBinary(options.cacheDir);
  const proc = startProcess(binary, ['--root', dir, '--config', 'config', '--env', 'development', '--allow-no-auth', 'start'], { logFile });
  const address = `127.0.0.1:${frontend}`;
  const stop = (): Promise<void> => stopProcess(proc.pid);

  // Ready when a good client registers the namespace (the system namespace comes up first).
  const tls = { serverRootCACertificate: readFileSync(ca.certFile), serverNameOverride: serverName, clientCertPair: { crt: readFileSync(client.certFile), key: readFileSync(client.keyFile) } };
  const deadline = Date.now() + 90_000;
  for (;;) {
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, tls, connectTimeout: 2_000 });
      await connection.workflowService.registerNamespace({ namespace: options.namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
      break;
    } catch (err) {
      if ((err as { code?: number }).code === 6) break; // ALREADY_EXISTS
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`the TLS Temporal server did not come up: ${(err as Error).message}\n${tailFile(logFile, 20)}`);
      }
      await sleep(500);
    } finally {
      await connection?.close();
    }
  }
  return { address, namespace: options.namespace, caFile: ca.certFile, otherCaFile: other.certFile, serverName, client, expiredClient, strangerClient, logFile, stop };
}
