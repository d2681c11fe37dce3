import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

const run = promisify(execFile);

/**
 * Certificates for a cluster run, made with the `openssl` command (Debian's openssl package): one
 * private certificate authority, a server certificate for the Temporal frontend, and one client
 * certificate per worker kind or user. Keys are EC P-256 in PKCS#8 PEM, which Go (the server),
 * rustls (worker connections) and OpenSSL (client connections) all read. Files are written with
 * mode 0600 for keys; nothing here ever prints a key.
 */

/** A certificate and its private key, as PEM files. */
export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

export interface CertificateAuthority extends CertificateFiles {
  /** The folder `openssl ca` keeps its serial and index in. */
  dir: string;
}

/** A certificate's subject name part: letters, digits, dots, dashes (it also names the files). */
const CertName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/, 'a certificate name is 1-63 letters, digits, dots or dashes');

export const CertificateRequest = z.object({
  name: CertName,
  /** `peer`: both, for a cluster member that serves and dials its peers (Temporal's internode mTLS). */
  usage: z.enum(['server', 'client', 'peer']),
  /** Server and peer certificates: the DNS names and IP addresses clients dial. */
  dnsNames: z.array(z.string().min(1)).default([]),
  ipAddresses: z.array(z.ipv4().or(z.ipv6())).default([]),
  /** Validity window; defaults to now minus one hour .. now plus `days`. */
  notBefore: z.date().optional(),
  notAfter: z.date().optional(),
  /** @default 30 */
  days: z.number().int().min(1).default(30),
});
export type CertificateRequest = z.input<typeof CertificateRequest>;

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT') throw new Error('the openssl command is not installed (Debian: apt-get install openssl)');
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim().split('\n').slice(-3).join(' / ')}`);
  }
}

/** `openssl ca` wants dates as YYYYMMDDHHMMSSZ. */
function asn1Time(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

/** Creates a self-signed certificate authority in `dir` (kept when it already exists). */
export async function createCertificateAuthority(dir: string, commonName = 'vla-pipelines cluster CA'): Promise<CertificateAuthority> {
  const root = resolve(dir);
  const ca: CertificateAuthority = { dir: root, certFile: join(root, 'ca.pem'), keyFile: join(root, 'ca-key.pem') };
  if (existsSync(ca.certFile) && existsSync(ca.keyFile)) return ca;
  mkdirSync(join(root, 'issued'), { recursive: true, mode: 0o700 });
  writeFileSync(join(root, 'index.txt'), '');
  writeFileSync(join(root, 'serial'), '1000\n');
  writeFileSync(
    join(root, 'openssl.cnf'),
    [
      '[ca]',
      'default_ca = vla',
      '[vla]',
      `dir = ${root}`,
      'database = $dir/index.txt',
      'serial = $dir/serial',
      'new_certs_dir = $dir/issued',
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      // The request's SANs and usages are set per certificate through -extfile-style sections below.
      'copy_extensions = none',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', ca.keyFile], root);
  await openssl(
    ['req', '-x509', '-new', '-key', ca.keyFile, '-sha256', '-days', '3650', '-subj', `/CN=${commonName}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', ca.certFile],
    root,
  );
  return ca;
}

/**
 * Issues a certificate signed by `ca` into `outDir` as `<name>.pem` and `<name>-key.pem`. Client
 * certificates carry the name as their common name, which is how the server's logs tell workers
 * apart. Dates may lie in the past: tests use an expired certificate.
 */
export async function issueCertificate(ca: CertificateAuthority, outDir: string, request: CertificateRequest): Promise<CertificateFiles> {
  const req = CertificateRequest.parse(request);
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: CertificateFiles = { certFile: join(dir, `${req.name}.pem`), keyFile: join(dir, `${req.name}-key.pem`) };
  const csrFile = join(dir, `${req.name}.csr`);
  const extFile = join(dir, `${req.name}.ext.cnf`);
  const san = [...req.dnsNames.map((n) => `DNS:${n}`), ...req.ipAddresses.map((ip) => `IP:${ip}`)];
  writeFileSync(
    extFile,
    [
      '[ext]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage = ${{ server: 'serverAuth', client: 'clientAuth', peer: 'serverAuth,clientAuth' }[req.usage]}`,
      ...(san.length > 0 ? [`subjectAltName = ${san.join(',')}`] : []),
      '',
    ].join('\n'),
  );
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', files.keyFile], dir);
  await openssl(['req', '-new', '-key', files.keyFile, '-subj', `/CN=${req.name}`, '-out', csrFile], dir);
  const notBefore = req.notBefore ?? new Date(Date.now() - 3_600_000);
  const notAfter = req.notAfter ?? new Date(notBefore.getTime() + req.days * 86_400_000);
  await openssl(
    ['ca', '-batch', '-notext', '-config', join(ca.dir, 'openssl.cnf'), '-cert', ca.certFile, '-keyfile', ca.keyFile, '-in', csrFile, '-out', files.certFile, '-startdate', asn1Time(notBefore), '-enddate', asn1Time(notAfter), '-extfile', extFile, '-extensions', 'ext'],
    dir,
  );
  rmSync(csrFile);
  rmSync(extFile);
  return files;
}
