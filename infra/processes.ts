import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Child processes of the local stack. Every process we start gets a PID file; we only ever stop
 * processes by the PID we recorded (never by name).
 */

export interface StartedProcess {
  pid: number;
  logFile: string;
}

/** Starts a long-running process with stdout and stderr appended to `logFile`. */
export function startProcess(
  command: string,
  args: readonly string[],
  options: { logFile: string; pidFile?: string; detached?: boolean; env?: NodeJS.ProcessEnv; cwd?: string },
): StartedProcess {
  mkdirSync(dirname(options.logFile), { recursive: true });
  const out = openSync(options.logFile, 'a');
  try {
    const child = spawn(command, args, {
      stdio: ['ignore', out, out],
      // Detached: its own process group, so it outlives `vla dev up` and we can signal the group.
      detached: options.detached ?? false,
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    if (child.pid === undefined) throw new Error(`could not start ${command}`);
    if (options.detached) child.unref();
    if (options.pidFile) {
      mkdirSync(dirname(options.pidFile), { recursive: true });
      writeFileSync(options.pidFile, `${child.pid}\n`);
    }
    return { pid: child.pid, logFile: options.logFile };
  } finally {
    closeSync(out);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readPidFile(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * SIGTERM, then SIGKILL after `graceMs`. With `group`, signals the process group the PID leads
 * (the process was started detached), so its children stop too.
 */
export async function stopProcess(pid: number, options: { graceMs?: number; group?: boolean } = {}): Promise<void> {
  const target = options.group ? -pid : pid;
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(target, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  };
  if (!isAlive(pid)) return;
  signal('SIGTERM');
  const deadline = Date.now() + (options.graceMs ?? 10_000);
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await sleep(100);
  }
  signal('SIGKILL');
  while (isAlive(pid)) await sleep(50);
}

/** Stops the process a PID file names, if it still runs, and removes the file. */
export async function stopByPidFile(pidFile: string, options: { graceMs?: number; group?: boolean } = {}): Promise<boolean> {
  const pid = readPidFile(pidFile);
  if (pid === undefined) return false;
  const wasAlive = isAlive(pid);
  await stopProcess(pid, options);
  rmSync(pidFile, { force: true });
  return wasAlive;
}

/** The last `lines` lines of a log file, for error messages and `vla dev logs`. */
export function tailFile(file: string, lines = 40): string {
  if (!existsSync(file)) return '';
  const text = readFileSync(file, 'utf8');
  return text.split('\n').slice(-lines - 1).join('\n');
}
