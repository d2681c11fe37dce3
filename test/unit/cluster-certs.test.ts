import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificate } from '../../infra/cluster/certs';

describe('cluster certificates (openssl)', () => {
  it('issues server and client certificates that chain to the CA, with their names, usages and dates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vla-certs-'));
    const ca = await createCertificateAuthority(join(dir, 'ca'));
    const server = await issueCertificate(ca, join(dir, 'out'), { name: 'frontend', usage: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const client = await issueCertificate(ca, join(dir, 'out'), { name: 'worker-gpu', usage: 'client' });
    const expired = await issueCertificate(ca, join(dir, 'out'), { name: 'expired', usage: 'client', notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2020-01-02T00:00:00Z') });
    const caCert = new X509Certificate(readFileSync(ca.certFile));
    const serverCert = new X509Certificate(readFileSync(server.certFile));
    const clientCert = new X509Certificate(readFileSync(client.certFile));
    const expiredCert = new X509Certificate(readFileSync(expired.certFile));
    expect(caCert.ca).toBe(true);
    for (const cert of [serverCert, clientCert, expiredCert]) expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(serverCert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(serverCert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth
    expect(clientCert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // clientAuth
    expect(clientCert.subject).toBe('CN=worker-gpu');
    expect(new Date(expiredCert.validTo).getTime()).toBe(Date.parse('2020-01-02T00:00:00Z'));
    expect(new Date(clientCert.validTo).getTime()).toBeGreaterThan(Date.now());
    expect(statSync(client.keyFile).mode & 0o077).toBe(0);
    // A second CA in the same folder is the first one: reruns keep issued certificates valid.
    expect(readFileSync((await createCertificateAuthority(join(dir, 'ca'))).certFile, 'utf8')).toBe(readFileSync(ca.certFile, 'utf8'));
  });

  it('issues a peer certificate for both ends of internode mutual TLS (serverAuth and clientAuth)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vla-certs-'));
    const ca = await createCertificateAuthority(join(dir, 'ca'));
    const peer = await issueCertificate(ca, join(dir, 'out'), { name: 'temporal-server', usage: 'peer', dnsNames: ['localhost'], ipAddresses: ['10.0.0.1'] });
    const cert = new X509Certificate(readFileSync(peer.certFile));
    expect(cert.verify(new X509Certificate(readFileSync(ca.certFile)).publicKey)).toBe(true);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:10.0.0.1');
  });

  it('refuses a name that could escape its folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vla-certs-'));
    const ca = await createCertificateAuthority(join(dir, 'ca'));
    await expect(issueCertificate(ca, dir, { name: '../evil', usage: 'client' })).rejects.toThrow(/certificate name/);
  });
});
