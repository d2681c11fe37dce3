import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile, type ConfigDataSource } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

/**
 * Every Temporal connection of the project (CLI, workers, dev stack, tests, benchmarks) is loaded
 * here, the way the Temporal CLI loads it (docs/design.md, "Connections come from envconfig"):
 * the TOML config file (`TEMPORAL_CONFIG_FILE`, else `~/.config/temporalio/temporal.toml`), its
 * profile (`TEMPORAL_PROFILE`, else `default`), then the `TEMPORAL_*` variables on top. Only the
 * fallbacks differ from the CLI's: address `127.0.0.1:7233` and namespace `vla`, the local dev
 * stack's, so `npm start` needs no configuration.
 */

/** The local dev stack's address, used when neither the environment nor the profile sets one. */
export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';
/** The project's namespace (created by `vla dev up`), used when neither the environment nor the profile sets one. */
export const DEFAULT_TEMPORAL_NAMESPACE = 'vla';

/** What went wrong, by cause; each `TemporalConnectionError` carries one. */
export const ConnectionErrorCode = {
  /** The config file is not valid TOML, the profile is missing, or settings contradict each other. */
  CONFIG_INVALID: 'CONFIG_INVALID',
  /** A TLS certificate or key file named by the settings cannot be read. */
  FILE_UNREADABLE: 'FILE_UNREADABLE',
  /** Nothing answers at the address: refused, DNS failure, timeout. */
  UNREACHABLE: 'UNREACHABLE',
  /** The client speaks TLS and the server does not, or the other way round. */
  TLS_MISMATCH: 'TLS_MISMATCH',
  /** The server's certificate does not chain to a trusted CA (or has expired). */
  SERVER_CERT_UNTRUSTED: 'SERVER_CERT_UNTRUSTED',
  /** The server's certificate is not valid for the name the client checks. */
  SERVER_NAME_MISMATCH: 'SERVER_NAME_MISMATCH',
  /** The server requires a client certificate and none was sent. */
  CLIENT_CERT_REQUIRED: 'CLIENT_CERT_REQUIRED',
  /** The server refused the client certificate because it has expired. */
  CLIENT_CERT_EXPIRED: 'CLIENT_CERT_EXPIRED',
  /** The server refused the client certificate (another CA, wrong usage). */
  CLIENT_CERT_REJECTED: 'CLIENT_CERT_REJECTED',
  /** The server refused the credentials: API key wrong or missing (UNAUTHENTICATED / PERMISSION_DENIED). */
  CREDENTIALS_REJECTED: 'CREDENTIALS_REJECTED',
  /** The server answers but has no such namespace. */
  NAMESPACE_NOT_FOUND: 'NAMESPACE_NOT_FOUND',
  /** Anything else; the message carries the (redacted) cause. */
  UNKNOWN: 'UNKNOWN',
} as const;
export type ConnectionErrorCode = (typeof ConnectionErrorCode)[keyof typeof ConnectionErrorCode];

/**
 * Thrown when the connection settings cannot be loaded or the server cannot be used with them.
 * The message names the profile, where the settings came from and the cause; it never holds a
 * key, a certificate or an API key.
 */
export class TemporalConnectionError extends Error {
  override readonly name = 'TemporalConnectionError';
  constructor(
    readonly code: ConnectionErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Holds the key and API key in `connectionOptions` and `secrets`: log `description`, never the object. */
export interface TemporalConnectionSettings {
  /** What both `Connection.connect` (clients) and `NativeConnection.connect` (workers) take. */
  connectionOptions: NativeConnectionOptions & { address: string };
  namespace: string;
  /** The profile's name (`TEMPORAL_PROFILE`, else `default`), whether or not the file has it. */
  profile: string;
  /** Where the settings came from, for messages: the config file (or its absence) and the variables set. */
  source: string;
  /** `Temporal profile "<name>" (<source>)`: how every message starts. */
  origin: string;
  /** Address, namespace, TLS and API-key presence, file paths only: safe to log. */
  description: string;
  /** Values that must never reach a log or an error (API key, inline and read key/cert contents). */
  readonly secrets: readonly string[];
}

export interface LoadConnectionOptions {
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
  /**
   * Ignore the config file (the project's own dev servers: a user's profile must not redirect
   * them). @default false
   */
  disableFile?: boolean;
}

/** The variables envconfig reads (besides `TEMPORAL_GRPC_META_*`), named in messages when set. */
const TEMPORAL_VARIABLES = [
  'TEMPORAL_CONFIG_FILE',
  'TEMPORAL_PROFILE',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_CERT_DATA',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_DATA',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION',
] as const;

/** Where the Temporal CLI looks for its config file on Linux when `TEMPORAL_CONFIG_FILE` is unset. */
function defaultConfigFile(env: NodeJS.ProcessEnv): string | undefined {
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg) return isAbsolute(xdg) ? join(xdg, 'temporalio', 'temporal.toml') : undefined;
  return env.HOME ? join(env.HOME, '.config', 'temporalio', 'temporal.toml') : undefined;
}

function errnoText(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}

/** The config file's text, or undefined when it does not exist (the CLI treats that as "no file"). */
function readConfigFile(path: string, describe: () => string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new TemporalConnectionError(ConnectionErrorCode.FILE_UNREADABLE, `${describe()}: cannot read the config file ${path} (${errnoText(err)})`);
  }
}

/**
 * smol-toml's message carries a code block of the lines around the error, which may hold an API
 * key or an inline key: keep only its first line and the position.
 */
function tomlProblem(err: unknown): string {
  const first = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
  const { line, column } = err as { line?: unknown; column?: unknown };
  return typeof line === 'number' && typeof column === 'number' ? `${first} (line ${line}, column ${column})` : first;
}

/** Only blank lines and comments. */
function isBlankToml(text: string): boolean {
  return text.split(/\r?\n/).every((line) => /^\s*(#.*)?$/.test(line));
}

const TLS_FILES = [
  { field: 'serverCACert', what: 'server CA certificate', variable: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', toml: 'tls.server_ca_cert_path' },
  { field: 'clientCert', what: 'client certificate', variable: 'TEMPORAL_TLS_CLIENT_CERT_PATH', toml: 'tls.client_cert_path' },
  { field: 'clientKey', what: 'client key', variable: 'TEMPORAL_TLS_CLIENT_KEY_PATH', toml: 'tls.client_key_path' },
] as const;

/** The bytes of an inline or file source as text (for redaction), reading files once here. */
function sourceText(source: ConfigDataSource | undefined): string | undefined {
  if (source === undefined) return undefined;
  if ('path' in source) return readFileSync(source.path, 'utf8');
  return typeof source.data === 'string' ? source.data : Buffer.from(source.data).toString('utf8');
}

function describeSource(source: ConfigDataSource | undefined): string {
  if (source === undefined) return 'none';
  return 'path' in source ? source.path : 'inline data';
}

/**
 * Loads the connection settings the way the Temporal CLI does, with the project's fallbacks. Reads
 * the TLS files now, so an unreadable one fails here, naming it. Throws `TemporalConnectionError`
 * (CONFIG_INVALID, FILE_UNREADABLE).
 */
export function loadTemporalConnection(options: LoadConnectionOptions = {}): TemporalConnectionSettings {
  const env = options.env ?? process.env;
  const profileName = env.TEMPORAL_PROFILE ?? 'default';
  const configFile = options.disableFile ? undefined : (env.TEMPORAL_CONFIG_FILE ?? defaultConfigFile(env));
  const variablesSet = TEMPORAL_VARIABLES.filter((name) => env[name] !== undefined);
  const fileText = configFile !== undefined ? readConfigFile(configFile, () => `Temporal profile "${profileName}"`) : undefined;
  const fileWords = configFile === undefined ? 'no config file' : fileText === undefined ? `config file ${configFile} (absent)` : `config file ${configFile}`;
  const source = `${fileWords}; ${variablesSet.length > 0 ? `environment ${variablesSet.join(', ')}` : 'no TEMPORAL_* variables'}`;
  const where = `Temporal profile "${profileName}" (${source})`;
  const fail = (code: ConnectionErrorCode, problem: string): TemporalConnectionError => new TemporalConnectionError(code, `${where}: ${problem}`);

  // envconfig takes a plain string record; undefined entries would read as set.
  const envRecord = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({
      overrideEnvVars: envRecord,
      // envconfig trips over a file without any table (TypeError); an empty one is no settings at all.
      ...(fileText !== undefined && !isBlankToml(fileText) ? { configSource: { data: fileText } } : { disableFile: true }),
    });
  } catch (err) {
    // smol-toml's TomlError (not exported by envconfig) carries the position and a code block.
    if (err instanceof Error && 'codeblock' in err) throw fail(ConnectionErrorCode.CONFIG_INVALID, `malformed config file: ${tomlProblem(err)}`);
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof TypeError) throw fail(ConnectionErrorCode.CONFIG_INVALID, `the config file ${configFile} has no [profile.<name>] table`);
    // envconfig only complains about a missing profile when one was asked for by name.
    if (/^Profile '.*' not found/.test(message)) throw fail(ConnectionErrorCode.CONFIG_INVALID, `no such profile in ${fileText !== undefined ? configFile : 'the (absent) config file'}`);
    throw fail(ConnectionErrorCode.CONFIG_INVALID, message.split('\n')[0] ?? message);
  }
  if (env.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION === 'true' || env.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION === '1') {
    // The TypeScript SDK cannot skip the check; silently checking anyway would be a surprise too.
    throw fail(ConnectionErrorCode.CONFIG_INVALID, 'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported by the TypeScript SDK: set TEMPORAL_TLS_SERVER_NAME to a name in the server certificate instead');
  }

  const tls = profile.tls;
  const secrets: string[] = [];
  if (profile.apiKey !== undefined) secrets.push(profile.apiKey);
  if (tls !== undefined && tls.disabled !== true) {
    for (const file of TLS_FILES) {
      let text: string | undefined;
      try {
        text = sourceText(tls[file.field]);
      } catch (err) {
        throw fail(ConnectionErrorCode.FILE_UNREADABLE, `cannot read the TLS ${file.what} file ${describeSource(tls[file.field])} (${file.variable} or the profile's ${file.toml}): ${errnoText(err)}`);
      }
      if (text !== undefined) secrets.push(text.trim());
    }
    // envconfig drops a half pair without a word; the server would then say "certificate required".
    if ((tls.clientCert === undefined) !== (tls.clientKey === undefined)) {
      throw fail(ConnectionErrorCode.CONFIG_INVALID, `a TLS client ${tls.clientCert === undefined ? 'key' : 'certificate'} is set without its ${tls.clientCert === undefined ? 'certificate (TEMPORAL_TLS_CLIENT_CERT_PATH / _DATA)' : 'key (TEMPORAL_TLS_CLIENT_KEY_PATH / _DATA)'}`);
    }
  }

  const client = toClientOptions(profile);
  const address = profile.address ?? DEFAULT_TEMPORAL_ADDRESS;
  const namespace = profile.namespace ?? DEFAULT_TEMPORAL_NAMESPACE;
  if (!/^(\[[0-9a-fA-F:]+\]|[^\s:/]+):\d{1,5}$/.test(address)) throw fail(ConnectionErrorCode.CONFIG_INVALID, `address "${address}" is not host:port`);
  if (namespace.trim() === '') throw fail(ConnectionErrorCode.CONFIG_INVALID, 'the namespace is empty');

  const tlsWords =
    client.connectionOptions.tls === undefined || client.connectionOptions.tls === false || client.connectionOptions.tls === null
      ? 'TLS off'
      : [
          tls?.clientCert !== undefined ? `mutual TLS (client certificate ${describeSource(tls.clientCert)}, key ${describeSource(tls.clientKey)})` : 'TLS',
          `server CA ${tls?.serverCACert !== undefined ? describeSource(tls.serverCACert) : 'system roots'}`,
          ...(tls?.serverName !== undefined ? [`server name ${tls.serverName}`] : []),
        ].join(', ');
  const metadataKeys = Object.keys(profile.grpcMeta ?? {});
  const description = [
    `address ${address}`,
    `namespace ${namespace}`,
    tlsWords,
    profile.apiKey !== undefined ? 'API key set' : 'no API key',
    ...(metadataKeys.length > 0 ? [`gRPC metadata ${metadataKeys.join(', ')}`] : []),
  ].join(', ');
  // Metadata values may be credentials too (e.g. an authorization header).
  for (const value of Object.values(profile.grpcMeta ?? {})) secrets.push(value);

  return {
    connectionOptions: { ...client.connectionOptions, address },
    namespace,
    profile: profileName,
    source,
    origin: where,
    description: `${where}: ${description}`,
    secrets: secrets.filter((s) => s.length >= 4),
  };
}

/** Settings for a dev server the project started itself on loopback: no config file, no TLS. */
export function localDevServerConnection(address: string, namespace: string): TemporalConnectionSettings {
  return loadTemporalConnection({ env: { TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace }, disableFile: true });
}

/** Whether the settings name a server `vla dev up` could have started: plain TCP on loopback. */
export function isLocalDevServer(settings: TemporalConnectionSettings): boolean {
  const { tls, apiKey } = settings.connectionOptions;
  const host = settings.connectionOptions.address.slice(0, settings.connectionOptions.address.lastIndexOf(':'));
  return (tls === undefined || tls === null || tls === false) && apiKey === undefined && ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host);
}

/** Replaces every secret and anything shaped like a PEM block. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text.replace(/-----BEGIN [A-Z ]+-----[\s\S]*?(-----END [A-Z ]+-----|$)/g, '[redacted PEM]');
  for (const secret of secrets) out = out.split(secret).join('[redacted]');
  return out;
}

/** The message of an error and its causes, one line. */
function errorText(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    parts.push(current instanceof Error ? current.message : typeof current === 'string' ? current : JSON.stringify(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(' <- ').replace(/\s+/g, ' ').trim();
}

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** gRPC status codes the classification reads. */
const GRPC = { DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, PERMISSION_DENIED: 7, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

/**
 * Turns a failed connect or first call (grpc-js client or Rust worker connection) into one error
 * naming the profile, where its settings came from, the address and the cause, with what to do.
 */
export function explainConnectionError(err: unknown, settings: TemporalConnectionSettings): TemporalConnectionError {
  if (err instanceof TemporalConnectionError) return err;
  const text = redact(errorText(err), settings.secrets);
  const code = grpcCode(err);
  const { address, tls, apiKey } = settings.connectionOptions;
  const tlsOn = tls !== undefined && tls !== null && tls !== false;
  const classify = (): [ConnectionErrorCode, string] => {
    // The worker's Rust connection reports a status by tonic's description of the code, not its number.
    if ((code === GRPC.NOT_FOUND || /code: 'Some requested entity was not found'/.test(text)) && /namespace/i.test(text)) {
      return [ConnectionErrorCode.NAMESPACE_NOT_FOUND, `namespace "${settings.namespace}" does not exist on the server (set TEMPORAL_NAMESPACE or the profile's namespace; \`vla dev up\` creates "vla" on the local dev server)`];
    }
    if (code === GRPC.UNAUTHENTICATED || code === GRPC.PERMISSION_DENIED || /code: '(The request does not have valid authentication credentials|The caller does not have permission)/.test(text)) {
      return [ConnectionErrorCode.CREDENTIALS_REJECTED, apiKey !== undefined ? 'the server rejected the API key (TEMPORAL_API_KEY or the profile\'s api_key): check that it is current and has access to this namespace' : 'the server requires credentials: set TEMPORAL_API_KEY or a client certificate'];
    }
    // Alerts the server sent about our certificate (OpenSSL words, then rustls words).
    if (/alert certificate required|CertificateRequired/i.test(text)) {
      return [ConnectionErrorCode.CLIENT_CERT_REQUIRED, 'the server requires a client certificate and none was sent: set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (or the profile\'s tls.client_cert_path / client_key_path)'];
    }
    if (/alert certificate expired|fatal alert: CertificateExpired/i.test(text)) {
      return [ConnectionErrorCode.CLIENT_CERT_EXPIRED, 'the server rejected the client certificate as expired: issue a new one'];
    }
    if (/alert unknown ca|alert bad certificate|alert unsupported certificate|alert access denied|fatal alert: (UnknownCA|BadCertificate|UnsupportedCertificate|AccessDenied|DecryptError)/i.test(text)) {
      return [ConnectionErrorCode.CLIENT_CERT_REJECTED, 'the server rejected the client certificate (not issued by a CA it trusts for clients, or not a client certificate)'];
    }
    // Our own checks of the server's certificate.
    if (/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate|NotValidForName|CertNotValidForName/i.test(text)) {
      return [ConnectionErrorCode.SERVER_NAME_MISMATCH, `the server's certificate is not valid for the name checked (${typeof tls === 'object' && tls?.serverNameOverride ? `TEMPORAL_TLS_SERVER_NAME=${tls.serverNameOverride}` : `the host in ${address}`}): set TEMPORAL_TLS_SERVER_NAME to a name the certificate holds`];
    }
    if (/unable to verify|self[- ]signed certificate|unable to get (local )?issuer|UnknownIssuer|certificate has expired|InvalidCertificate\(Expired|certificate verify failed|CERT_UNTRUSTED/i.test(text)) {
      return [ConnectionErrorCode.SERVER_CERT_UNTRUSTED, `the server's certificate is not trusted (${/expired/i.test(text) ? 'it has expired' : 'unknown CA'}): set TEMPORAL_TLS_SERVER_CA_CERT_PATH (or the profile's tls.server_ca_cert_path) to the CA that issued it`];
    }
    if (/wrong version number|packet length too long|http\/1|InvalidContentType|CorruptMessage/i.test(text) || (tlsOn && /Failed to connect|ECONNRESET|socket hang up/i.test(text) && !/ECONNREFUSED/.test(text))) {
      return [ConnectionErrorCode.TLS_MISMATCH, tlsOn ? 'the TLS handshake failed: the server may not speak TLS (set TEMPORAL_TLS=false for a plain server)' : 'the server closed the connection: it may require TLS (set TEMPORAL_TLS=true, a CA, or a client certificate)'];
    }
    if (/ECONNREFUSED|Connection refused|ENOTFOUND|EAI_AGAIN|Name resolution failed|dns error|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|deadline|timed? ?out/i.test(text) || code === GRPC.DEADLINE_EXCEEDED) {
      return [ConnectionErrorCode.UNREACHABLE, `nothing answers at ${address} (set TEMPORAL_ADDRESS or the profile's address; for the local stack: npm run vla -- dev up)`];
    }
    if (!tlsOn && /Failed to connect|broken pipe|ECONNRESET/i.test(text)) {
      return [ConnectionErrorCode.TLS_MISMATCH, 'the server closed the connection: it may require TLS (set TEMPORAL_TLS=true, a CA, or a client certificate)'];
    }
    if (code === GRPC.UNAVAILABLE) return [ConnectionErrorCode.UNREACHABLE, `the server at ${address} is unavailable`];
    return [ConnectionErrorCode.UNKNOWN, 'the connection failed'];
  };
  const [cause, advice] = classify();
  return new TemporalConnectionError(cause, `${settings.origin}: cannot connect to ${address}, namespace ${settings.namespace}: ${advice} [${cause}: ${text}]`);
}
