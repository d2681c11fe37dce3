import { Argument, type Command } from 'commander';
import { loadConfig } from '../../infra/config';
import { CLUSTER_BUCKET, CLUSTER_CLIENTS, clusterDown, clusterEnv, clusterInfo, clusterStatus, clusterUp, type ClusterClient } from '../../infra/cluster/cluster';

const say = (line: string): void => console.log(line);

/** `KEY=value` lines a shell can `export`; values are paths and addresses only. */
const envLines = (env: Record<string, string>): string[] => Object.entries(env).map(([key, value]) => `${key}=${value}`);

export function registerCluster(program: Command): void {
  const cluster = program.command('cluster').description('the cluster profile: PostgreSQL, the Temporal server with mutual TLS, and an S3 store (state under VLA_STATE_DIR/cluster)');

  cluster
    .command('up')
    .description('start PostgreSQL, the Temporal server and versitygw, set up schemas and the namespace (keeps data; running parts are kept)')
    .action(async () => {
      const config = loadConfig();
      const info = await clusterUp({ stateDir: config.stateDir, cacheDir: config.cacheDir, namespace: config.temporal().namespace, log: say });
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
      const status = await clusterStatus(loadConfig().stateDir);
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
