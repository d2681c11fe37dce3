import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

const run = promisify(execFile);

/**
 * The cluster's private network: every server and host lives in a network namespace this module
 * creates, and nothing in the machine's own namespace is changed. A "LAN" namespace holds a Linux
 * bridge with the servers' address (x.y.z.1/24); each host gets its own namespace joined to the
 * bridge by a veth pair (x.y.z.N). Every namespace created is recorded in
 * `<state>/cluster/network.json` before it is made, so `destroyNetwork` removes exactly those and
 * never a namespace it did not create. Interfaces live only inside these namespaces, where their
 * names cannot collide with the machine's. Needs root (`ip netns`).
 */

/** A host name: it names a namespace, a veth (`v-<name>`, at most 15 characters) and a folder. */
export const HostName = z.string().regex(/^[a-z][a-z0-9-]{0,12}$/, 'a host name is 1-13 lower-case letters, digits or dashes, starting with a letter');
export type HostName = z.infer<typeof HostName>;

const Ipv4 = z.ipv4();

export const NetworkRecord = z.strictObject({
  /** Short random id: every namespace of this network is named `vla-<id>-...`. */
  id: z.string().regex(/^[a-z0-9]{4,8}$/),
  /** The /24 the bridge serves, as its first three octets ("10.213.7"). */
  subnet: z.string().regex(/^10\.\d{1,3}\.\d{1,3}$/),
  lan: z.strictObject({ netns: z.string().min(1), bridge: z.string().min(1).max(15), address: Ipv4 }),
  hosts: z.record(HostName, z.strictObject({ netns: z.string().min(1), veth: z.string().min(1).max(15), address: Ipv4 })),
});
export type NetworkRecord = z.infer<typeof NetworkRecord>;

export const networkFile = (stateDir: string): string => join(stateDir, 'cluster', 'network.json');

const BRIDGE = 'br0';
/** The interface a host sees; it lives in the host's own namespace, so every host may call it eth0. */
const HOST_INTERFACE = 'eth0';
/** Second octet of the subnets this module picks (a third octet is chosen free per network). */
const SUBNET_BASE = 213;

export function readNetwork(stateDir: string): NetworkRecord | undefined {
  const file = networkFile(stateDir);
  if (!existsSync(file)) return undefined;
  const parsed = NetworkRecord.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file} is not a network record: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  return parsed.data;
}

function writeNetwork(stateDir: string, record: NetworkRecord): void {
  const file = networkFile(stateDir);
  mkdirSync(dirname(file), { recursive: true });
  // Written whole and renamed: a crash leaves the old record or the new one, never half of one.
  writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

async function ip(args: string[]): Promise<string> {
  try {
    return (await run('ip', args)).stdout;
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('the ip command (iproute2) is not installed');
    throw new Error(`ip ${args.join(' ')} failed: ${(e.stderr ?? String(err)).trim()}`);
  }
}

/** Whether this process may create network namespaces (root, with `ip` installed). */
export function canUseNamespaces(): boolean {
  return process.getuid?.() === 0 && ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].some((path) => existsSync(path));
}

export async function listNamespaces(): Promise<string[]> {
  const out = await ip(['-j', 'netns', 'list']);
  if (out.trim() === '') return [];
  return z.array(z.object({ name: z.string() })).parse(JSON.parse(out)).map((ns) => ns.name);
}

/** Third octets of 10.213.x.0/24 already used by a route of this machine or an address in any namespace. */
async function usedSubnets(): Promise<Set<number>> {
  const used = new Set<number>();
  const note = (text: string): void => {
    for (const m of text.matchAll(/\b10\.(\d{1,3})\.(\d{1,3})\.\d{1,3}/g)) if (Number(m[1]) === SUBNET_BASE) used.add(Number(m[2]));
  };
  note(await ip(['-4', 'route', 'show', 'table', 'all']));
  note(await ip(['-4', 'addr']));
  for (const ns of await listNamespaces()) note(await ip(['-n', ns, '-4', 'addr']).catch(() => ''));
  return used;
}

/**
 * Creates the LAN namespace and its bridge, or returns the recorded one if it exists. The record
 * is written before the namespace is made, and the namespace is removed again if a later step fails.
 */
export async function ensureNetwork(stateDir: string): Promise<NetworkRecord> {
  const existing = readNetwork(stateDir);
  if (existing && (await listNamespaces()).includes(existing.lan.netns)) return existing;
  const id = existing?.id ?? randomBytes(3).toString('hex');
  const used = await usedSubnets();
  const third = existing ? Number(existing.subnet.split('.')[2]) : [...Array(254).keys()].map((i) => i + 1).find((n) => !used.has(n));
  if (third === undefined) throw new Error(`no free 10.${SUBNET_BASE}.x.0/24 subnet for the cluster network`);
  const subnet = `10.${SUBNET_BASE}.${third}`;
  // Hosts already recorded stay recorded (their namespaces may still exist), so `destroyNetwork` still removes them.
  const record: NetworkRecord = { id, subnet, lan: { netns: `vla-${id}-lan`, bridge: BRIDGE, address: `${subnet}.1` }, hosts: existing?.hosts ?? {} };
  writeNetwork(stateDir, record);
  try {
    await ip(['netns', 'add', record.lan.netns]);
    await ip(['-n', record.lan.netns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', record.lan.netns, 'link', 'add', BRIDGE, 'type', 'bridge']);
    await ip(['-n', record.lan.netns, 'addr', 'add', `${record.lan.address}/24`, 'dev', BRIDGE]);
    await ip(['-n', record.lan.netns, 'link', 'set', BRIDGE, 'up']);
  } catch (err) {
    await ip(['netns', 'delete', record.lan.netns]).catch(() => undefined);
    throw err;
  }
  return record;
}

/**
 * Adds a host namespace joined to the bridge (idempotent: an existing host keeps its address).
 * @throws Error when the network does not exist
 */
export async function addHost(stateDir: string, name: string): Promise<NetworkRecord['hosts'][string]> {
  HostName.parse(name);
  const record = readNetwork(stateDir);
  if (!record) throw new Error(`no cluster network in ${networkFile(stateDir)}; create it first`);
  const namespaces = await listNamespaces();
  const known = record.hosts[name];
  if (known && namespaces.includes(known.netns)) return known;
  const taken = new Set(Object.entries(record.hosts).filter(([other]) => other !== name).map(([, h]) => h.address));
  const last = [...Array(252).keys()].map((i) => i + 2).find((n) => !taken.has(`${record.subnet}.${n}`));
  if (last === undefined) throw new Error(`the cluster network ${record.subnet}.0/24 has no free address left`);
  const host = { netns: `vla-${record.id}-${name}`, veth: `v-${name}`, address: `${record.subnet}.${last}` };
  writeNetwork(stateDir, { ...record, hosts: { ...record.hosts, [name]: host } });
  try {
    await ip(['netns', 'add', host.netns]);
    await ip(['-n', host.netns, 'link', 'set', 'lo', 'up']);
    // Both ends made from inside the LAN namespace: the pair never appears in the machine's own namespace.
    await ip(['-n', record.lan.netns, 'link', 'add', host.veth, 'type', 'veth', 'peer', 'name', HOST_INTERFACE, 'netns', host.netns]);
    await ip(['-n', record.lan.netns, 'link', 'set', host.veth, 'master', record.lan.bridge]);
    await ip(['-n', record.lan.netns, 'link', 'set', host.veth, 'up']);
    await ip(['-n', host.netns, 'addr', 'add', `${host.address}/24`, 'dev', HOST_INTERFACE]);
    await ip(['-n', host.netns, 'link', 'set', HOST_INTERFACE, 'up']);
  } catch (err) {
    // Deleting the namespace deletes the veth pair with it.
    await ip(['netns', 'delete', host.netns]).catch(() => undefined);
    await ip(['-n', record.lan.netns, 'link', 'delete', host.veth]).catch(() => undefined);
    throw err;
  }
  return host;
}

/** Removes one host's namespace (its veth pair goes with it) and its record. */
export async function removeHost(stateDir: string, name: string): Promise<void> {
  const record = readNetwork(stateDir);
  const host = record?.hosts[name];
  if (!record || !host) return;
  if ((await listNamespaces()).includes(host.netns)) await ip(['netns', 'delete', host.netns]);
  const hosts = { ...record.hosts };
  delete hosts[name];
  writeNetwork(stateDir, { ...record, hosts });
}

/**
 * Removes every namespace the record names (hosts, then the LAN) and the record itself: nothing
 * it did not create. Returns the namespaces removed.
 */
export async function destroyNetwork(stateDir: string): Promise<string[]> {
  const record = readNetwork(stateDir);
  if (!record) return [];
  const present = new Set(await listNamespaces());
  const removed: string[] = [];
  for (const netns of [...Object.values(record.hosts).map((h) => h.netns), record.lan.netns]) {
    if (!present.has(netns)) continue;
    await ip(['netns', 'delete', netns]);
    removed.push(netns);
  }
  writeNetwork(stateDir, { ...record, hosts: {} });
  // The record goes last: a failure above leaves it, so a second `down` finds what is left.
  rmSync(networkFile(stateDir), { force: true });
  return removed;
}
