import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TrainerEvent, TrainLoraInput } from '../../data-schemas/training';
import type { PythonEnv } from '../runtime/python-env';
import { stopByPidFile, stopProcess, writePidFile } from '../runtime/processes';
import { parseTrainerEventLine, TrainerEventLog, type TrainerOutcome } from './trainer-events';

const STDERR_LINES_KEPT = 40;
const TRAINER_PID_FILE = 'trainer.pid';

/** The interpreter arguments that start the trainer: directly on one GPU (or CPU), through `accelerate launch` on several. */
export function trainerLaunchArgs(run: Pick<TrainLoraInput, 'gpus' | 'distributed' | 'precision'>): string[] {
  if (run.gpus <= 1) return ['-m', 'vla_py.train'];
  const backend = run.distributed === 'deepspeed-zero2' ? ['--use_deepspeed', '--zero_stage', '2'] : run.distributed === 'fsdp' ? ['--use_fsdp'] : ['--multi_gpu'];
  return ['-m', 'accelerate.commands.launch', '--num_processes', String(run.gpus), ...backend, ...(run.precision === 'fp32' ? [] : ['--mixed_precision', run.precision]), '-m', 'vla_py.train'];
}

/** Checkpoint uploads queued by the event handler: they run one at a time, in order, while training goes on. */
export interface UploadQueue {
  push: (job: () => Promise<void>) => void;
}

export interface TrainerRun {
  env: PythonEnv;
  /** The run's work dir: the trainer's cwd, its PID file and stderr log. */
  runDir: string;
  configPath: string;
  launch: Pick<TrainLoraInput, 'gpus' | 'distributed' | 'precision'>;
  signal: AbortSignal;
  /** SIGTERM, then SIGKILL after this long, when the signal aborts. */
  killGraceMs: number;
  onEvent: (event: TrainerEvent, uploads: UploadQueue) => void;
}

/**
 * Runs the trainer in its own process group and reads its JSON-line events; returns once it has
 * exited, its group is gone and every queued upload has finished (an upload's error is thrown).
 */
export async function runTrainer(run: TrainerRun): Promise<TrainerOutcome> {
  const argv = [...trainerLaunchArgs(run.launch), '--config', run.configPath];
  const child: ChildProcess = spawn(run.env.python, argv, {
    cwd: run.runDir,
    // Its own process group: cancellation stops the trainer and everything it started.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...run.env.env, VLA_PARENT_PID: String(process.pid) },
  });
  if (child.pid === undefined) throw new Error(`could not start the trainer (${run.env.python})`);
  const pid = child.pid;
  writePidFile(join(run.runDir, TRAINER_PID_FILE), pid, { argv: [run.env.python, ...argv], groupLeader: true });

  const stderr: string[] = [];
  const stderrLog = createWriteStream(join(run.runDir, 'trainer.stderr.log'), { flags: 'a' });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderrLog.write(`${line}\n`);
    stderr.push(line);
    if (stderr.length > STDERR_LINES_KEPT) stderr.shift();
  });

  let chain = Promise.resolve();
  let uploadError: Error | undefined;
  const uploads: UploadQueue = {
    push: (job) => {
      chain = chain.then(job).catch((err: unknown) => {
        uploadError ??= err instanceof Error ? err : new Error(String(err));
      });
    },
  };
  const log = new TrainerEventLog();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const event = parseTrainerEventLine(line);
    if (!event) {
      stderr.push(line);
      return;
    }
    log.record(event);
    run.onEvent(event, uploads);
  });

  let cancelled = false;
  const onAbort = (): void => {
    cancelled = true;
    void stopProcess(pid, { group: true, graceMs: run.killGraceMs }).catch(() => undefined);
  };
  run.signal.addEventListener('abort', onAbort, { once: true });
  if (run.signal.aborted) onAbort();
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  run.signal.removeEventListener('abort', onAbort);
  // The group may still hold launcher children; nothing of this run may outlive it.
  await stopProcess(pid, { group: true, graceMs: 1_000 }).catch(() => undefined);
  rmSync(join(run.runDir, TRAINER_PID_FILE), { force: true });
  await chain;
  stderrLog.end();
  if (cancelled) return { kind: 'cancelled' };
  if (uploadError) throw uploadError;
  return log.outcome({ code, signal, cancelled, stderr });
}

/** A trainer left running by a worker that died: stop it before starting another on the same files (only if its PID file still matches it). */
export async function stopOrphanedTrainer(runDir: string, graceMs: number): Promise<void> {
  const outcome = await stopByPidFile(join(runDir, TRAINER_PID_FILE), { graceMs });
  if (outcome.kind === 'still-alive') throw new Error(`the trainer left running in ${runDir} would not stop: ${outcome.reason}`);
}
