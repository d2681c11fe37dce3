import getPort from 'get-port';
import { join } from 'node:path';
import { createCertificateAuthority, issueCertificate, type CertificateFiles } from '../../infra/cluster/certs';
import { clientTls, ensureTemporalServer, registerNamespace, startTemporalServer, waitForFrontend, writeTemporalConfig, type TemporalPorts } from '../../infra/cluster/temporal-server';
import { stopProcess } from '../../activities/runtime/processes';

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
 * certificates (mutual TLS), on free loopback ports, with the namespace registered: the cluster
 * profile's server and config (infra/cluster/temporal-server.ts) without PostgreSQL, for tests of
 * connection settings.
 */
export async function startTlsTemporal(options: { dir: string; cacheDir: string; namespace: string }): Promise<TlsTemporal> {
  const { dir } = options;
  const ca = await createCertificateAuthority(join(dir, 'ca'));
  const other = await createCertificateAuthority(join(dir, 'other-ca'), 'a CA nobody trusts');
  const certs = join(dir, 'certs');
  const serverName = 'frontend.vla.test';
  // 'peer': the same certificate serves the frontend and identifies the server's own services and system worker.
  const server = await issueCertificate(ca, certs, { name: 'frontend', usage: 'peer', dnsNames: [serverName, 'localhost'], ipAddresses: ['127.0.0.1'] });
  const client = await issueCertificate(ca, certs, { name: 'worker', usage: 'client' });
  const expiredClient = await issueCertificate(ca, certs, { name: 'expired', usage: 'client', notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2020-01-02T00:00:00Z') });
  const strangerClient = await issueCertificate(other, join(dir, 'other-certs'), { name: 'stranger', usage: 'client' });

  const taken = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await getPort({ host: '127.0.0.1' });
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  const ports: TemporalPorts = {
    frontend: await port(),
    frontendMembership: await port(),
    history: await port(),
    historyMembership: await port(),
    matching: await port(),
    matchingMembership: await port(),
    worker: await port(),
    workerMembership: await port(),
  };
  writeTemporalConfig(join(dir, 'config'), { bindIp: '127.0.0.1', ports, persistence: { plugin: 'sqlite-memory' }, caFile: ca.certFile, serverCert: server, serverName });
  const logFile = join(dir, 'temporal-server.log');
  const pid = startTemporalServer({ binary: await ensureTemporalServer(options.cacheDir, () => {}), rootDir: dir, logFile });
  const address = `127.0.0.1:${ports.frontend}`;
  const stop = (): Promise<void> => stopProcess(pid);
  try {
    const connection = await waitForFrontend({ address, tls: clientTls(ca.certFile, client, serverName), pid, logFile, timeoutMs: 90_000 });
    try {
      await registerNamespace(connection, options.namespace);
    } finally {
      await connection.close();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, namespace: options.namespace, caFile: ca.certFile, otherCaFile: other.certFile, serverName, client, expiredClient, strangerClient, logFile, stop };
}
