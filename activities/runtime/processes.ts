import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';

/**
 * Child processes of the local stack. Every process we start gets a PID file that records its
 * identity (start time, boot, command line, process group); we only ever signal a process, or its
 * group, after the live process matches that record, so a PID reused by an unrelated process is
 * never touched. Identity comes from Linux /proc (the project runs on Linux; elsewhere every PID
 * file reads as unverifiable and nothing is signalled).
 */

export interface StartedProcess {
  pid: number;
  logFile: string;
}

/** Starts a long-running process with stdout and stderr appended to `logFile`. */
export function startProcess(
  command: string,
  args: readonly string[],
  options: {
    logFile: string;
    pidFile?: string;
    detached?: boolean;
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    /**
     * Run inside this network namespace (`ip netns exec`, which execs the command in place: the PID
     * and the recorded identity are the command's own). Needs root.
     */
    netns?: string;
    /**
     * Run as this unprivileged account (`setpriv`, which also execs in place, so the PID stays the
     * command's own): for servers that refuse to run as root, such as PostgreSQL. Needs root.
     */
    user?: { uid: number; gid: number };
  },
): StartedProcess {
  mkdirSync(dirname(options.logFile), { recursive: true });
  const out = openSync(options.logFile, 'a');
  try {
    const asUser = options.user === undefined ? [command, ...args] : ['setpriv', `--reuid=${options.user.uid}`, `--regid=${options.user.gid}`, '--init-groups', '--', command, ...args];
    const inNetns = options.netns === undefined ? asUser : ['ip', 'netns', 'exec', options.netns, ...asUser];
    const [file, ...argv] = inNetns as [string, ...string[]];
    const child = spawn(file, argv, {
      stdio: ['ignore', out, out],
      // Detached: its own process group, so it outlives `vla dev up` and we can signal the group.
      detached: options.detached ?? false,
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    if (child.pid === undefined) throw new Error(`could not start ${command}`);
    if (options.detached) child.unref();
    // The command's own argv: what /proc shows once `ip netns exec` and `setpriv` have exec'd it.
    if (options.pidFile) writePidFile(options.pidFile, child.pid, { argv: [command, ...args], groupLeader: options.detached ?? false });
    return { pid: child.pid, logFile: options.logFile };
  } finally {
    closeSync(out);
  }
}

/** What /proc says about a live process. */
export interface ProcessIdentity {
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot (a decimal string, compared as text). */
  startTicks: string;
  /** /proc/sys/kernel/random/boot_id: a reboot makes every recorded start time meaningless. */
  bootId: string;
  argv: string[];
  /** The process group it belongs to (field 5). */
  pgrp: number;
  /** Field 3: R, S, D, Z (zombie), ... */
  state: string;
}

const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';

/** Whether this machine has the /proc files that process identity needs. */
export const hasProcIdentity = (): boolean => existsSync(BOOT_ID_FILE) && existsSync('/proc/self/stat');

/** The identity of a live process, or undefined when it does not exist (or /proc is not there). */
export function processIdentity(pid: number): ProcessIdentity | undefined {
  let stat: string;
  let cmdline: string;
  let bootId: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    bootId = readFileSync(BOOT_ID_FILE, 'utf8').trim();
  } catch {
    return undefined;
  }
  // Field 2 (comm) is in parentheses and may itself hold spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const pgrp = Number(fields[2]);
  const startTicks = fields[19];
  if (state === undefined || startTicks === undefined || !/^\d+$/.test(startTicks) || !Number.isInteger(pgrp)) return undefined;
  return { startTicks, bootId, argv: cmdline.split('\0').filter((a, i, all) => i < all.length - 1 || a !== ''), pgrp, state };
}

/** A zombie has exited; only its parent's wait() is missing. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return processIdentity(pid)?.state !== 'Z';
}

/** The PID file: a JSON record of the process's identity at start. */
export const PidRecord = z.strictObject({
  pid: z.int().positive(),
  startTicks: z.string().regex(/^\d+$/),
  bootId: z.string().min(1),
  /** The command and arguments as we started it. */
  argv: z.array(z.string()).min(1),
  /** Started detached (its own process group, led by `pid`): stopped by signalling the group. */
  groupLeader: z.boolean(),
});
export type PidRecord = z.infer<typeof PidRecord>;

/**
 * Records a process we just started. Its start time and boot come from /proc; its command line is
 * the one we asked for (a `#!/usr/bin/env node` script re-executes, so /proc shows either form).
 */
export function writePidFile(pidFile: string, pid: number, options: { argv: readonly string[]; groupLeader: boolean }): void {
  if (!hasProcIdentity()) throw new Error(`${pidFile}: recording a process's identity needs Linux /proc (/proc/<pid>/stat, ${BOOT_ID_FILE})`);
  const identity = processIdentity(pid);
  // Gone already (it failed to start): no file; the caller sees the exit.
  if (identity === undefined) return;
  const record: PidRecord = { pid, startTicks: identity.startTicks, bootId: identity.bootId, argv: [...options.argv], groupLeader: options.groupLeader };
  mkdirSync(dirname(pidFile), { recursive: true });
  writeFileSync(pidFile, `${JSON.stringify(record)}\n`);
}

/** The live command line runs what we started: it ends with the recorded argv (an interpreter may stand before it). */
const sameCommand = (live: readonly string[], recorded: readonly string[]): boolean =>
  live.length >= recorded.length && isDeepStrictEqual(live.slice(live.length - recorded.length), recorded);

/** Why a live process is not the recorded one, or undefined when it is. */
export function identityMismatch(record: PidRecord, live: ProcessIdentity | undefined): string | undefined {
  if (live === undefined || live.state === 'Z') return `pid ${record.pid} is not running`;
  if (live.bootId !== record.bootId) return `the machine rebooted since pid ${record.pid} was recorded`;
  if (live.startTicks !== record.startTicks) return `pid ${record.pid} now belongs to another process (started at tick ${live.startTicks}, recorded ${record.startTicks})`;
  // While a process is inside execve (a wrapper such as `ip netns exec` or `env` exec'ing the next
  // one), /proc/<pid>/cmdline reads empty for an instant. Start time and boot already identify the
  // process, so an empty read is that instant, not another command.
  if (live.argv.length > 0 && !sameCommand(live.argv, record.argv)) return `pid ${record.pid} now runs another command (${live.argv.join(' ').slice(0, 200)})`;
  if (record.groupLeader && live.pgrp !== record.pid) return `pid ${record.pid} no longer leads its process group`;
  return undefined;
}

/** What a PID file says, checked against the live process. */
export type PidFileState =
  | { kind: 'absent' }
  /** The process we started still runs. */
  | { kind: 'ours'; record: PidRecord }
  /** The recorded process is gone (dead, PID reused, rebooted): nothing to stop. */
  | { kind: 'stale'; record: PidRecord; reason: string }
  /** A file without an identity (an old-format file holding only a PID, or garbage): never signalled. */
  | { kind: 'unverifiable'; pid?: number; alive: boolean; reason: string };

export function inspectPidFile(pidFile: string): PidFileState {
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    return { kind: 'unverifiable', alive: false, reason: `${pidFile} cannot be read: ${(err as Error).message}` };
  }
  if (/^\d+$/.test(text)) {
    const pid = Number(text);
    return { kind: 'unverifiable', pid, alive: isAlive(pid), reason: `${pidFile} is an old-format PID file (pid ${pid} only, no identity), so pid ${pid} cannot be checked to be ours` };
  }
  let parsed: ReturnType<typeof PidRecord.safeParse>;
  try {
    parsed = PidRecord.safeParse(JSON.parse(text));
  } catch {
    return { kind: 'unverifiable', alive: false, reason: `${pidFile} is not a PID file (neither a PID nor a JSON record)` };
  }
  if (!parsed.success) return { kind: 'unverifiable', alive: false, reason: `${pidFile} is not a valid PID record: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}` };
  const record = parsed.data;
  if (!hasProcIdentity()) return { kind: 'unverifiable', pid: record.pid, alive: isAlive(record.pid), reason: `${pidFile}: checking pid ${record.pid} needs Linux /proc` };
  const reason = identityMismatch(record, processIdentity(record.pid));
  return reason === undefined ? { kind: 'ours', record } : { kind: 'stale', record, reason };
}

export interface StopWaits {
  /** How long after SIGTERM before SIGKILL. @default 10_000 */
  graceMs?: number;
  /** How long after SIGKILL before giving up. @default 5_000 */
  killWaitMs?: number;
}

/** Still alive after SIGKILL and the bounded wait (a process in uninterruptible sleep, or one we may not signal). */
export class ProcessStillAliveError extends Error {
  constructor(
    readonly pid: number,
    waitedMs: number,
  ) {
    super(`pid ${pid} is still alive ${waitedMs} ms after SIGKILL`);
    this.name = 'ProcessStillAliveError';
  }
}

/** Polls until `gone()` or the deadline; true when gone. */
async function waitUntil(gone: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (gone()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(100, Math.max(1, deadline - Date.now())));
  }
}

/**
 * SIGTERM, up to `graceMs`, then SIGKILL, up to `killWaitMs`; throws ProcessStillAliveError when the
 * process outlives both. With `group`, signals the process group `pid` leads, so its children stop too;
 * a PID that leads no group is signalled alone. With `record`, a process that no longer matches it
 * is left alone. For a child this process holds (a ChildProcess) or one
 * whose PID file `inspectPidFile` found ours: never for a bare PID of unknown origin.
 */
export async function stopProcess(pid: number, options: StopWaits & { group?: boolean; record?: PidRecord } = {}): Promise<void> {
  const graceMs = options.graceMs ?? 10_000;
  const killWaitMs = options.killWaitMs ?? 5_000;
  const { record } = options;
  const gone = (): boolean => !isAlive(pid) || (record !== undefined && identityMismatch(record, processIdentity(pid)) !== undefined);
  const signal = (sig: NodeJS.Signals): void => {
    // Checked again before each signal: the PID may have been freed and reused during the grace period.
    if (gone()) return;
    // kill(-pid) needs a group with that id; a process that leads none is signalled by its PID.
    const leads = options.group === true && processIdentity(pid)?.pgrp === pid;
    try {
      process.kill(leads ? -pid : pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  };
  if (gone()) return;
  signal('SIGTERM');
  if (await waitUntil(gone, graceMs)) return;
  signal('SIGKILL');
  if (!(await waitUntil(gone, killWaitMs))) throw new ProcessStillAliveError(pid, killWaitMs);
}

export type StopOutcome =
  | { kind: 'absent' }
  | { kind: 'stopped'; pid: number }
  | { kind: 'stale'; pid: number; reason: string }
  | { kind: 'unverifiable'; pid?: number; alive: boolean; reason: string }
  | { kind: 'still-alive'; pid: number; reason: string };

/**
 * Stops the process a PID file names, only when it is still the process we started; bounded waits.
 * A stale file is removed; an unverifiable one is left alone (and its process with it), and so is the
 * file of a process that would not die.
 */
export async function stopByPidFile(pidFile: string, waits: StopWaits = {}): Promise<StopOutcome> {
  const state = inspectPidFile(pidFile);
  switch (state.kind) {
    case 'absent':
      return state;
    case 'unverifiable':
      // A dead PID in an old-format file is harmless to forget.
      if (state.pid !== undefined && !state.alive) rmSync(pidFile, { force: true });
      return state;
    case 'stale':
      rmSync(pidFile, { force: true });
      return { kind: 'stale', pid: state.record.pid, reason: state.reason };
    case 'ours': {
      const { pid, groupLeader } = state.record;
      try {
        await stopProcess(pid, { ...waits, group: groupLeader, record: state.record });
      } catch (err) {
        return { kind: 'still-alive', pid, reason: (err as Error).message };
      }
      rmSync(pidFile, { force: true });
      return { kind: 'stopped', pid };
    }
  }
}

/** The last `lines` lines of a log file, for error messages and `vla dev logs`. */
export function tailFile(file: string, lines = 40): string {
  if (!existsSync(file)) return '';
  const text = readFileSync(file, 'utf8');
  return text.split('\n').slice(-lines - 1).join('\n');
}
