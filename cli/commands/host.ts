import { Command, Option } from 'commander';
import { loadConfig } from '../../infra/config';
import { HOST_KINDS, hostPaths, killHost, listHosts, spawnInHost, startHost, stopHost, waitForHostReady, type HostKind } from '../../infra/cluster/hosts';
import { addHost, canUseNamespaces, destroyNetwork, ensureNetwork, readNetwork } from '../../infra/cluster/network';
import type { StopOutcome } from '../../activities/runtime/processes';

const say = (line: string): void => console.log(line);

function describeStop(name: string, outcome: StopOutcome): string {
  switch (outcome.kind) {
    case 'absent':
      return `host ${name}: not running (no PID file)`;
    case 'stopped':
      return `host ${name}: stopped (pid ${outcome.pid})`;
    case 'stale':
      return `host ${name}: not running (stale PID file: ${outcome.reason})`;
    case 'unverifiable':
      return `host ${name}: left alone (${outcome.reason})`;
    case 'still-alive':
      return `host ${name}: ${outcome.reason}`;
  }
}

const failed = (outcome: StopOutcome): boolean => outcome.kind === 'still-alive' || (outcome.kind === 'unverifiable' && outcome.alive);

export function registerHost(program: Command): void {
  const host = program
    .command('host')
    .description('workers as separate hosts: each in its own network and mount namespace (root), with its own environment and scratch under <state>/cluster/hosts/<name>/');

  host
    .command('start')
    .description('start a worker host and wait until its worker runs (exit 1 with the end of its log if it exits first); it inherits TEMPORAL_*, AWS_*, VLA_STORE_* (s3:// only) and its kind\'s model keys, nothing else')
    .argument('<name>', 'host name: 1-13 lower-case letters, digits or dashes')
    .addOption(new Option('--kind <kind>', 'the worker it runs').choices(HOST_KINDS).makeOptionMandatory())
    .option('--station-id <id>', 'station hosts: the station id')
    .argument('[worker-args...]', 'after --: more arguments for `vla worker <kind>` (e.g. -- --rate 50)')
    .action(async (name: string, workerArgs: string[], opts: { kind: HostKind; stationId?: string }) => {
      const { stateDir } = loadConfig();
      const record = await startHost(stateDir, { name, kind: opts.kind, ...(opts.stationId !== undefined && { stationId: opts.stationId }), workerArgs });
      await waitForHostReady(stateDir, name);
      const where = record.isolation === 'namespaces' ? `namespace ${record.netns ?? ''}, address ${record.address ?? ''}` : 'no namespaces (not root): a separate process tree on loopback';
      say(`host ${name} (${record.kind}) runs: ${where}; log ${hostPaths(stateDir, name).logFile}`);
    });

  host
    .command('add')
    .description('a host with no worker (a researcher\'s or a test driver\'s machine) to run commands in with `vla host exec`')
    .argument('<name>', 'host name')
    .action(async (name: string) => {
      if (!canUseNamespaces()) throw new Error('vla host add needs root (ip netns); without it, `vla host exec` runs commands here on loopback');
      const { stateDir } = loadConfig();
      await ensureNetwork(stateDir);
      const added = await addHost(stateDir, name);
      say(`host ${name}: namespace ${added.netns}, address ${added.address}`);
    });

  host
    .command('stop')
    .description('graceful: SIGTERM to the host\'s process group (its worker finishes its tasks), SIGKILL after 10 s')
    .argument('<name>', 'host name')
    .action(async (name: string) => {
      const outcome = await stopHost(loadConfig().stateDir, name);
      say(describeStop(name, outcome));
      if (failed(outcome)) process.exitCode = 1;
    });

  host
    .command('kill')
    .description('SIGKILL to the host\'s whole process group at once, as a machine that loses power')
    .argument('<name>', 'host name')
    .action((name: string) => {
      const outcome = killHost(loadConfig().stateDir, name);
      say(describeStop(name, outcome));
      if (failed(outcome)) process.exitCode = 1;
    });

  host
    .command('list')
    .description('the hosts, their kind, namespace, address and whether their worker runs')
    .action(() => {
      const { stateDir } = loadConfig();
      const network = readNetwork(stateDir);
      if (network) say(`network: ${network.lan.netns}, servers at ${network.lan.address} (${network.subnet}.0/24)`);
      const hosts = listHosts(stateDir);
      if (hosts.length === 0) say('no hosts');
      for (const h of hosts) {
        const where = h.record.isolation === 'namespaces' ? `${h.record.netns ?? ''} ${h.record.address ?? ''}` : 'loopback (no namespaces)';
        const state = h.state === 'ours' ? `running (pid ${h.pid ?? '?'})` : h.state === 'absent' ? 'stopped' : `${h.state}${h.pid !== undefined ? ` (pid ${h.pid})` : ''}`;
        say(`${h.record.name}\t${h.record.kind}${h.record.stationId !== undefined ? ` ${h.record.stationId}` : ''}\t${where}\t${state}`);
      }
    });

  host
    .command('exec')
    .description('run a command from inside a host\'s network namespace, with this environment and VLA_MULTI_HOST=1 (e.g. vla host exec researcher -- vla relabel s3://...)')
    .argument('<name>', 'host name')
    .argument('<command...>', 'after --: the command and its arguments')
    .action(async (name: string, command: string[]) => {
      const [file, ...args] = command;
      if (file === undefined) throw new Error('no command given (vla host exec <name> -- <command> [args...])');
      const child = spawnInHost(loadConfig().stateDir, name, file, args);
      const code = await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (status, signal) => resolve(status ?? (signal !== null ? 128 : 1)));
      });
      process.exitCode = code;
    });

  host
    .command('down')
    .description('stop every host (gracefully), then remove the namespaces the cluster network created, and only those')
    .action(async () => {
      const { stateDir } = loadConfig();
      let problems = 0;
      for (const h of listHosts(stateDir)) {
        const outcome = await stopHost(stateDir, h.record.name);
        say(describeStop(h.record.name, outcome));
        if (failed(outcome)) problems++;
      }
      if (problems > 0) {
        process.exitCode = 1;
        say('the network is kept while a host may still run in it');
        return;
      }
      const removed = await destroyNetwork(stateDir);
      say(removed.length > 0 ? `removed ${removed.join(', ')}` : 'no cluster network');
    });
}
