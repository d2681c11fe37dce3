import { Argument, Command } from 'commander';
import { loadConfig } from '../../infra/config';
import { positiveInt } from '../options';
import { COMPONENTS, devDown, devLogs, devStatus, devUp, uiUrl, type Component, type ComponentStatus } from '../../infra/dev-stack';

const say = (line: string): void => console.log(line);

function describeComponent(c: ComponentStatus): string {
  switch (c.state) {
    case 'running':
      return `running (pid ${c.pid})`;
    case 'stopped':
      return 'stopped';
    case 'stale':
      return `stopped (stale PID file: ${c.reason})`;
    case 'unverifiable':
      return `unknown (${c.reason})`;
  }
}

export function registerDev(program: Command): void {
  const dev = program.command('dev').description('the local stack: Temporal dev server (with Web UI) and workers');

  dev
    .command('up')
    .description('start the stack (state, logs and PID files under VLA_STATE_DIR)')
    .option('--no-worker', 'start only the Temporal server')
    .action(async (opts: { worker: boolean }) => {
      const config = loadConfig();
      await devUp(config, say, { worker: opts.worker });
      say(`Temporal Web UI: ${uiUrl(config) ?? '(not the local dev server)'}`);
    });

  dev
    .command('down')
    .description('stop the workers, then the server (by PID file: only processes that still match it, waits bounded)')
    .action(async () => {
      // Each problem was printed; a non-zero exit says something may still run.
      if ((await devDown(loadConfig(), say)).length > 0) process.exitCode = 1;
    });

  dev
    .command('status')
    .description('show which components run and whether Temporal answers')
    .action(async () => {
      const status = await devStatus(loadConfig());
      for (const c of status.components) say(`${c.component.padEnd(13)} ${describeComponent(c)}  log: ${c.logFile}`);
      say(`temporal health: ${status.temporalHealthy ? 'ok' : `not answering (${status.temporalError ?? 'unknown'})`}`);
      if (status.uiUrl !== undefined) say(`Temporal Web UI: ${status.uiUrl}`);
      if (!status.components.every((c) => c.state === 'running') || !status.temporalHealthy) process.exitCode = 1;
    });

  dev
    .command('logs')
    .description(`print the end of a component's log (${COMPONENTS.join(', ')})`)
    .addArgument(new Argument('[component]', 'which log').choices(COMPONENTS).default('temporal'))
    .option('-n, --lines <n>', 'how many lines', positiveInt, 50)
    .action((component: Component, opts: { lines: number }) => {
      say(devLogs(loadConfig(), component, opts.lines));
    });
}
