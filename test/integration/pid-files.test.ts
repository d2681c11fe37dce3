import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { devDown, devStatus, devUp, stackPaths, type Component } from '../../infra/dev-stack';
import { loadConfig, type ResolvedConfig } from '../../infra/config';
import { inspectPidFile, isAlive, PidRecord, processIdentity, startProcess, writePidFile } from '../../activities/runtime/processes';

/**
 * PID files against real processes: a PID file whose process is gone, or whose PID now belongs to an
 * unrelated process (a group leader or not), is stale; `dev down` signals nothing that is not ours
 * and returns (every wait is bounded); an old-format file is reported, never acted on.
 */
describe('PID files record process identity; dev status and dev down act only on our processes', () => {
  let dir: string;
  let config: ResolvedConfig;
  const spawned: ChildProcess[] = [];
  const started: number[] = [];
  const lines: string[] = [];
  const log = (line: string): void => {
    lines.push(line);
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vla-pids-'));
    const temporal = inject('temporal');
    config = loadConfig({ VLA_STATE_DIR: dir, TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: temporal.namespace });
  });
  afterEach(() => {
    // Every process this test started, by PID (the unrelated ones are this process's children).
    for (const child of spawned.splice(0)) if (child.pid !== undefined && isAlive(child.pid)) child.kill('SIGKILL');
    for (const pid of started.splice(0)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(join(dir, 'pids'), { recursive: true, force: true });
    lines.length = 0;
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const pidFile = (component: Component): string => stackPaths(dir).pidFile(component);

  /** `sleep 300` as a child of this test process: not ours in the stack's sense. */
  function unrelated(options: { groupLeader: boolean }): number {
    const child = spawn('sleep', ['300'], { detached: options.groupLeader, stdio: 'ignore' });
    spawned.push(child);
    if (child.pid === undefined) throw new Error('could not start sleep');
    return child.pid;
  }

  /** A PID file of the stack, in the current format, for a process that ran and is gone. */
  async function recordOfDeadProcess(component: Component): Promise<PidRecord> {
    const proc = startProcess('sleep', ['301'], { logFile: join(dir, 'logs', `${component}.log`), pidFile: pidFile(component), detached: true });
    process.kill(proc.pid, 'SIGKILL');
    while (isAlive(proc.pid)) await sleep(20);
    return PidRecord.parse(JSON.parse(readFileSync(pidFile(component), 'utf8')));
  }

  /** The recorded process is gone and its PID now belongs to `pid` (what PID reuse does). */
  async function reused(component: Component, pid: number): Promise<void> {
    const record = await recordOfDeadProcess(component);
    writeFileSync(pidFile(component), JSON.stringify({ ...record, pid }));
  }

  const statusOf = async (component: Component) => (await devStatus(config)).components.find((c) => c.component === component)!;

  it.each([
    { name: 'not a group leader', groupLeader: false },
    { name: 'a group leader', groupLeader: true },
  ])('a PID reused by an unrelated process ($name): status says stale, down returns and leaves it alive', async ({ groupLeader }) => {
    const pid = unrelated({ groupLeader });
    await reused('worker-cpu', pid);
    const status = await statusOf('worker-cpu');
    expect(status.state).toBe('stale');
    expect(status.reason).toMatch(new RegExp(`pid ${pid} now (belongs to another process|runs another command)`));

    const problems = await devDown(config, log, { graceMs: 2_000, killWaitMs: 2_000 });
    expect(problems).toEqual([]);
    expect(lines.join('\n')).toMatch(/worker-cpu was not running: stale PID file removed/);
    expect(existsSync(pidFile('worker-cpu'))).toBe(false);
    expect(isAlive(pid)).toBe(true);
  });

  it.each([
    { name: 'not a group leader', groupLeader: false },
    { name: 'a group leader', groupLeader: true },
  ])('an old-format PID file (a bare PID) naming a live process ($name): reported as unverifiable, not killed, down fails naming it', async ({ groupLeader }) => {
    const pid = unrelated({ groupLeader });
    mkdirSync(join(dir, 'pids'), { recursive: true });
    writeFileSync(pidFile('worker-gpu'), `${pid}\n`);
    const status = await statusOf('worker-gpu');
    expect(status.state).toBe('unverifiable');
    expect(status.reason).toContain('old-format PID file');

    const problems = await devDown(config, log, { graceMs: 2_000, killWaitMs: 2_000 });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`worker-gpu: .*old-format PID file \\(pid ${pid} only.*not stopped`));
    expect(isAlive(pid)).toBe(true);
    // Kept: the user decides.
    expect(existsSync(pidFile('worker-gpu'))).toBe(true);
  });

  it('the PID of a dead process: stale in status, removed by down; a dead PID in an old-format file is forgotten', async () => {
    await recordOfDeadProcess('temporal');
    const status = await statusOf('temporal');
    expect(status.state).toBe('stale');
    expect(status.reason).toMatch(/is not running/);
    const dead = unrelated({ groupLeader: false });
    process.kill(dead, 'SIGKILL');
    while (isAlive(dead)) await sleep(20);
    writeFileSync(pidFile('worker-cpu'), `${dead}\n`);
    expect(await devDown(config, log, { graceMs: 2_000, killWaitMs: 2_000 })).toEqual([]);
    expect(existsSync(pidFile('temporal'))).toBe(false);
    expect(existsSync(pidFile('worker-cpu'))).toBe(false);
  });

  it('a process of ours is running in status and stopped by down, with its group; one that ignores SIGTERM is killed', async () => {
    const ours = startProcess('sleep', ['302'], { logFile: join(dir, 'logs', 'worker-cpu.log'), pidFile: pidFile('worker-cpu'), detached: true });
    started.push(ours.pid);
    // A shell that ignores SIGTERM and keeps a child in its group.
    const stubborn = startProcess('sh', ['-c', 'trap "" TERM; sleep 303 & wait; while :; do sleep 1; done'], {
      logFile: join(dir, 'logs', 'worker-gpu.log'),
      pidFile: pidFile('worker-gpu'),
      detached: true,
    });
    started.push(stubborn.pid);
    expect(await statusOf('worker-cpu')).toMatchObject({ state: 'running', pid: ours.pid });
    expect(await statusOf('worker-gpu')).toMatchObject({ state: 'running', pid: stubborn.pid });
    const record = inspectPidFile(pidFile('worker-gpu'));
    expect(record.kind === 'ours' && record.record).toMatchObject({ pid: stubborn.pid, groupLeader: true, argv: ['sh', '-c', expect.stringContaining('trap') as string] });
    expect(processIdentity(stubborn.pid)?.pgrp).toBe(stubborn.pid);

    const problems = await devDown(config, log, { graceMs: 500, killWaitMs: 5_000 });
    expect(problems).toEqual([]);
    expect(lines).toContain(`worker-cpu stopped (pid ${ours.pid})`);
    expect(lines).toContain(`worker-gpu stopped (pid ${stubborn.pid})`);
    expect(isAlive(ours.pid)).toBe(false);
    expect(isAlive(stubborn.pid)).toBe(false);
    expect(existsSync(pidFile('worker-cpu'))).toBe(false);
  });

  it('dev up refuses to start a component whose old-format PID file names a live process, instead of calling it running', async () => {
    const pid = unrelated({ groupLeader: true });
    mkdirSync(join(dir, 'pids'), { recursive: true });
    writeFileSync(pidFile('temporal'), `${pid}\n`);
    await expect(devUp(config, log, { worker: false })).rejects.toThrow(new RegExp(`temporal: .*old-format PID file \\(pid ${pid} only.*stop it yourself, then delete`));
    expect(lines.join('\n')).not.toContain('already running');
    expect(isAlive(pid)).toBe(true);
  });

  it('a PID file that is neither a PID nor a record is reported, and nothing is signalled', async () => {
    mkdirSync(join(dir, 'pids'), { recursive: true });
    writeFileSync(pidFile('station-sim-1'), 'not a pid\n');
    const status = await statusOf('station-sim-1');
    expect(status.state).toBe('unverifiable');
    expect(status.reason).toContain('is not a PID file');
    expect(await devDown(config, log, { graceMs: 500, killWaitMs: 500 })).toEqual([]);
  });
  it('a process that is still exec\'ing through its wrappers reads as ours at every instant, though /proc shows an empty command line inside each exec', () => {
    // 400 `env`s exec one another, then `sleep 303`: the worker hosts' wrappers (ip netns exec ->
    // unshare -> sh -> env -> node) in a longer chain. Each stage's command line ends with the recorded one.
    const wrappers = Array.from({ length: 400 }, () => 'env');
    const child = spawn('env', [...wrappers, 'sleep', '303'], { detached: true, stdio: 'ignore' });
    spawned.push(child);
    const file = pidFile('worker-gpu');
    writePidFile(file, child.pid!, { argv: ['sleep', '303'], groupLeader: true });
    const seen = new Map<string, number>();
    let emptyReads = 0;
    const deadline = Date.now() + 20_000;
    while (processIdentity(child.pid!)?.argv[0] !== 'sleep' && Date.now() < deadline) {
      const state = inspectPidFile(file);
      const label = state.kind === 'stale' ? `stale: ${state.reason}` : state.kind;
      seen.set(label, (seen.get(label) ?? 0) + 1);
      if (processIdentity(child.pid!)?.argv.length === 0) emptyReads += 1;
    }
    expect(Object.fromEntries(seen), `empty command lines read: ${emptyReads}`).toEqual({ ours: expect.any(Number) as number });
    expect(inspectPidFile(file)).toMatchObject({ kind: 'ours', record: { pid: child.pid, argv: ['sleep', '303'] } });
  });
  it.runIf(process.getuid?.() === 0)('a process started in a network namespace is recorded as itself (ip netns exec execs in place)', async () => {
    const netns = `vla-pidtest-${process.pid}`;
    execFileSync('ip', ['netns', 'add', netns]);
    try {
      const proc = startProcess('sleep', ['302'], { logFile: join(dir, 'logs', 'netns.log'), pidFile: pidFile('worker-cpu'), detached: true, netns });
      started.push(proc.pid);
      // Until ip has exec'd, /proc shows ip's command line; the identity (start time) is the same.
      while (processIdentity(proc.pid)?.argv[0] !== 'sleep') await sleep(20);
      expect(inspectPidFile(pidFile('worker-cpu'))).toMatchObject({ kind: 'ours', record: { pid: proc.pid, argv: ['sleep', '302'] } });
      expect(readlinkSync(`/proc/${proc.pid}/ns/net`)).not.toBe(readlinkSync('/proc/self/ns/net'));
    } finally {
      for (const pid of started.splice(0)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      execFileSync('ip', ['netns', 'delete', netns]);
    }
  });
});
