import { spawn } from 'node:child_process';
import { Argument, type Command } from 'commander';
import { loadConfig } from '../../infra/config';
import { CLUSTER_BUCKET, CLUSTER_CLIENTS, clusterDown, clusterEnv, clusterInfo, clusterPaths, clusterStatus, clusterUp, DEFAULT_PLACEMENT, ensureClusterPrograms, readManifest, type ClusterClient, type ClusterPlacement } from '../../infra/cluster/cluster';
import { addHost, canUseNamespaces, ensureNetwork, readNetwork } from '../../infra/cluster/network';

const say = (line: string): void => console.log(line);

/** `KEY=value` lines a shell can `export`; values are paths and addresses only. */
const envLines = (env: Record<string, string>): string[] => Object.entries(env).map(([key, value]) => `${key}=${value}`);

/** The host namespace `vla cluster up|status` run their checks from: the servers' LAN address is reachable only from a host on the LAN. */
export const CONTROL_HOST = 'control';
/** Marks the copy of `vla cluster` that already runs inside the control host. */
const IN_CONTROL_HOST = 'VLA_CLUSTER_IN_CONTROL_HOST';

/** Runs this same command again inside `netns`; resolves with its exit status. */
function rerunIn(netns: string): Promise<number> {
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, [IN_CONTROL_HOST]: '1' } });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (status, signal) => resolve(status ?? (signal !== null ? 128 : 1)));
  });
}

/**
 * Where the cluster's servers are: a cluster already set up stays where its manifest says; a new
 * one goes on the LAN (network.ts) when this machine allows namespaces, else on loopback. For the
 * LAN the command is re-run inside the 'control' host, whose exit status becomes ours, and this
 * returns undefined.
 */
async function placement(stateDir: string, create: boolean): Promise<ClusterPlacement | undefined> {
  const manifest = readManifest(clusterPaths(stateDir));
  if (manifest ? manifest.netns === undefined : !create || !canUseNamespaces()) return DEFAULT_PLACEMENT;
  if (!canUseNamespaces()) throw new Error(`the cluster in ${clusterPaths(stateDir).root} runs in network namespace ${manifest!.netns}; only root with the ip command can reach it`);
  const network = create ? await ensureNetwork(stateDir) : readNetwork(stateDir);
  if (!network) throw new Error(`the cluster's network (namespace ${manifest!.netns}) is gone: \`vla host down\` removed it; a cluster set up on it cannot move to a new one (use another VLA_STATE_DIR)`);
  if (process.env[IN_CONTROL_HOST] === '1') return { netns: network.lan.netns, serverIp: network.lan.address };
  const control = create ? await addHost(stateDir, CONTROL_HOST) : network.hosts[CONTROL_HOST];
  // The control host reaches only the LAN: whatever has to be downloaded or built is done here first.
  if (create) await ensureClusterPrograms(loadConfig().cacheDir, say);
  if (!control) throw new Error(`the cluster network has no ${CONTROL_HOST} host; run \`vla cluster up\``);
  process.exitCode = await rerunIn(control.netns);
  return undefined;
}

export function registerCluster(program: Command): void {
  const cluster = program.command('cluster').description('the cluster profile: PostgreSQL, the Temporal server with mutual TLS, and an S3 store (state under VLA_STATE_DIR/cluster)');

  cluster
    .command('up')
    .description('start PostgreSQL, the Temporal server and versitygw (on the cluster LAN, from its control host, when run as root), set up schemas and the namespace (keeps data; running parts are kept)')
    .action(async () => {
      const config = loadConfig();
      const where = await placement(config.stateDir, true);
      if (!where) return;
      const info = await clusterUp({ stateDir: config.stateDir, cacheDir: config.cacheDir, namespace: config.temporal().namespace, placement: where, log: say });
      say(`Temporal frontend (mTLS): ${info.temporalAddress}, namespace ${info.manifest.namespace}`);
      say(`S3 store: ${info.s3Endpoint}, bucket ${CLUSTER_BUCKET}`);
      say('Environment of a CPU worker (`vla cluster env <cpu|gemini|gpu|station|admin>` prints any kind):');
      for (const line of envLines(clusterEnv(info, 'cpu'))) say(`  ${line}`);
    });

  cluster
    .command('down')
    .description('stop the Temporal server, versitygw and PostgreSQL by their PID files (stop workers first)')
    .action(async () => {
      if ((await clusterDown(loadConfig().stateDir, say)).length > 0) process.exitCode = 1;
    });

  cluster
    .command('status')
    .description('show whether each server runs and answers (Temporal checked over mTLS with the admin certificate)')
    .action(async () => {
      const { stateDir } = loadConfig();
      if (!(await placement(stateDir, false))) return;
      const status = await clusterStatus(stateDir);
      if (status.info) say(`Temporal ${status.info.temporalAddress} namespace ${status.info.manifest.namespace}; S3 ${status.info.s3Endpoint}`);
      for (const c of status.components) {
        const state = c.state === 'ours' ? `running (pid ${c.pid})` : c.state === 'absent' ? 'stopped' : `${c.state}${c.reason ? ` (${c.reason})` : ''}`;
        say(`${c.component.padEnd(9)} ${state}; ${c.healthy ? 'answers' : `not answering (${c.detail ?? 'unknown'})`}  log: ${c.logFile}`);
      }
      if (!status.components.every((c) => c.state === 'ours' && c.healthy)) process.exitCode = 1;
    });

  cluster
    .command('env')
    .description('print the variables a worker of this kind needs (paths to its certificate files, never their content)')
    .addArgument(new Argument('<kind>', 'worker kind, or admin for the CLI').choices(CLUSTER_CLIENTS))
    .action((kind: ClusterClient) => {
      for (const line of envLines(clusterEnv(clusterInfo(loadConfig().stateDir), kind))) say(line);
    });
}
