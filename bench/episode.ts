/**
 * bench/episode: what Temporal costs a robot episode.
 *
 * 1. Orchestration overhead per cycle: the same episodes (simulated station, scripted policy,
 *    oracle verifier, frames and records written to the same store) run (a) through the
 *    `robotEpisode` workflow on a local dev server with an in-process station worker (which runs the
 *    episode, its station stages as local activities and its chunks as activities) and (b) as
 *    the same loop calling the same activity functions directly. Overhead per cycle =
 *    (workflow time - direct time) / cycles, per episode; the goal is <= 20 ms median.
 * 2. Format failures and repair cost per 100 chunks with and without structured decoding
 *    (bench/episode-format.ts).
 *
 * Options (`--name=value` or BENCH_NAME): episodes (8), seed (0).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEpisodeActivities } from '../activities/robot/episode/episode-activities';
import type { PolicyStageInput } from '../data-schemas/robot';
import { createStationActivities } from '../activities/robot/episode/station-activities';
import { SimStationDriver } from '../activities/robot/station/sim';
import { FileStore } from '../activities/store';
import { RobotEpisodeInput, type CycleRecord, type EpisodeRecord, type RobotEpisodeInputRaw, type RobotEpisodeResult } from '../data-schemas/robot';
import { fileUri, joinUri } from '../data-schemas/uri';
import { StationConfig } from '../data-schemas/station';
import { TaskQueue } from '../data-schemas/workflows';
import { createStationWorker } from '../workers/station';
import type { robotEpisode } from '../workflows';
import { formatFailureTable, measureFormatFailures } from './episode-format';
import { quantile } from '../activities/statistics';
import { tsMs } from './history';
import { option } from './options';
import { printTable } from './table';
import { Cleanups, startBenchTemporal } from './temporal';

const log = (line: string): void => console.error(`[bench:episode] ${line}`);
const NAMESPACE = 'default';
const STATION = 'bench-sim';
const TASKS = ['put the carrot on the plate', 'pick up the eggplant', 'put the spoon on the towel', 'stack the green block on the yellow block'];

const cfg = { episodes: option('episodes', 8), seed: option('seed', 1) - 1 };

function episodeInputs(root: string, kind: string): RobotEpisodeInputRaw[] {
  return Array.from({ length: cfg.episodes }, (_, i) => ({
    stationId: STATION,
    instruction: TASKS[i % TASKS.length] as string,
    seed: cfg.seed + i,
    // Exact answers: both paths run the very same cycles (format errors are part 2's subject).
    policy: { kind: 'scripted', seed: i, actionStdMeters: 0, formatErrorRate: 0 },
    outputUri: joinUri(root, kind, `e${i}`),
  }));
}

/** The episode loop without Temporal: the same activity functions, called in order. */
async function runDirect(raw: RobotEpisodeInputRaw, station: ReturnType<typeof createStationActivities>, cpu: ReturnType<typeof createEpisodeActivities>): Promise<{ ms: number; cycles: number; completed: boolean }> {
  const input = RobotEpisodeInput.parse(raw);
  const t0 = performance.now();
  const episodeId = `direct-${input.seed ?? 0}-${input.outputUri.length}`;
  const ref = { episodeId, outputUri: input.outputUri };
  const reset = await station.stationReset({ ...ref, instruction: input.instruction, ...(input.seed !== undefined && { seed: input.seed }) });
  const base = { episodeId, instruction: input.instruction, inDistribution: true, policy: input.policy, maxRepairs: input.limits.maxRepairs };
  const plan = await station.policyStage({ ...base, cycle: 0, stage: 'subtasks', subtasks: [], subtaskIndex: 0, frameUri: reset.frameUri } satisfies PolicyStageInput);
  const subtasks = plan.value as string[];
  const cycles: CycleRecord[] = [];
  let obs = reset;
  let index = 0;
  let retries = 0;
  while (index < subtasks.length && cycles.length < input.limits.maxCycles && retries <= input.limits.maxRetriesPerSubtask) {
    const cycle = cycles.length;
    const c0 = performance.now();
    const mp = await station.policyStage({ ...base, cycle, stage: 'motion_plan', subtasks, subtaskIndex: index, frameUri: obs.frameUri });
    const act = await station.policyStage({ ...base, cycle, stage: 'action', subtasks, subtaskIndex: index, frameUri: obs.frameUri, motionPlan: mp.value as string });
    const e0 = performance.now();
    const exec = await station.stationExecute({ ...ref, chunk: act.value as never, expectedStep: obs.step });
    const v0 = performance.now();
    const verdict = await station.verifyOracle({ episodeId, cycle, instruction: input.instruction, subtasks, subtaskIndex: index, before: obs, after: exec.after });
    const end = performance.now();
    cycles.push({
      cycle,
      subtaskIndex: index,
      subtask: subtasks[index] as string,
      attempt: retries,
      before: obs,
      motionPlan: mp.record,
      action: act.record,
      chunk: act.value as never,
      executed: exec.executed,
      trace: exec.trace,
      after: exec.after,
      executeError: null,
      interrupted: false,
      verdict,
      latencies: [
        { stage: 'execute', ms: v0 - e0 },
        { stage: 'verify', ms: end - v0 },
        { stage: 'cycle', ms: end - c0 },
      ],
      startedAt: new Date().toISOString(),
    });
    obs = exec.after;
    if (verdict.decision === 'proceed') {
      index++;
      retries = 0;
    } else retries++;
  }
  const evaluation = await station.stationEvaluate({ episodeId });
  const record: EpisodeRecord = {
    formatVersion: 1,
    episodeId,
    workflowId: episodeId,
    runId: 'direct',
    stationId: STATION,
    input,
    startedAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
    outcome: index >= subtasks.length ? 'completed' : 'retries_exhausted',
    reason: 'direct loop',
    subtasks,
    subtasksStage: plan.record,
    reset,
    cycles,
    evaluation,
    operatorEvents: [],
  };
  await cpu.finalizeEpisode({ record });
  await station.stationRelease({ episodeId });
  return { ms: performance.now() - t0, cycles: cycles.length, completed: index >= subtasks.length };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vla-bench-episode-'));
  const store = new FileStore();
  const root = fileUri(join(dir, 'store'));
  const cleanups = new Cleanups();
  try {
    const { client, native, workflowBundle } = await startBenchTemporal({ dir, namespace: NAMESPACE, cleanups, log });
    const station = await createStationWorker({
      workflowBundle,
      connection: native,
      namespace: NAMESPACE,
      stationId: STATION,
      station: StationConfig.parse({ kind: 'sim' }),
      store,
      stateDir: join(dir, 'station'),
    });
    const running = station.worker.run();
    cleanups.add('station worker', async () => {
      station.worker.shutdown();
      await running;
    });

    // The direct loop gets its own driver and folder: same code, no Temporal.
    const directStation = createStationActivities({ stationId: 'direct', driver: new SimStationDriver({}), store, stateDir: join(dir, 'direct-station') });
    const directCpu = createEpisodeActivities({ store }, 'cpu');

    // Warm-up (JIT, bundle caches, first frames) for both paths, not measured.
    await runDirect(episodeInputs(root, 'warm-direct')[0] as RobotEpisodeInputRaw, directStation, directCpu);
    await client.workflow.execute<typeof robotEpisode>('robotEpisode', { taskQueue: TaskQueue.station(STATION), workflowId: 'warm', args: [episodeInputs(root, 'warm-temporal')[0]] });

    const perCycle: number[] = [];
    const rows: string[][] = [['episode', 'task', 'cycles', 'direct (ms)', 'temporal (ms)', 'overhead / cycle (ms)']];
    const direct = episodeInputs(root, 'direct');
    const viaTemporal = episodeInputs(root, 'temporal');
    let directTotal = 0;
    let temporalTotal = 0;
    for (let i = 0; i < cfg.episodes; i++) {
      const d = await runDirect(direct[i] as RobotEpisodeInputRaw, directStation, directCpu);
      const t0 = performance.now();
      const r: RobotEpisodeResult = await client.workflow.execute<typeof robotEpisode>('robotEpisode', { taskQueue: TaskQueue.station(STATION), workflowId: `bench-${i}`, args: [viaTemporal[i]] });
      const t = performance.now() - t0;
      if (r.cycles !== d.cycles) log(`episode ${i}: ${r.cycles} cycles through Temporal vs ${d.cycles} direct (same seeds should agree)`);
      const overhead = (t - d.ms) / Math.max(1, r.cycles);
      perCycle.push(overhead);
      directTotal += d.ms;
      temporalTotal += t;
      rows.push([String(i), direct[i]?.instruction ?? '', String(r.cycles), d.ms.toFixed(0), t.toFixed(0), overhead.toFixed(1)]);
    }
    printTable(rows);
    if (process.env.BENCH_TIMELINE) {
      const history = await client.workflow.getHandle(`bench-${cfg.episodes - 1}`).fetchHistory();
      let prev = 0;
      for (const e of history.events ?? []) {
        const t = tsMs(e.eventTime);
        console.error(`${(prev ? t - prev : 0).toFixed(0).padStart(5)} ms  ${String(e.eventType)}`);
        prev = t;
      }
    }
    const med = quantile(perCycle, 0.5);
    console.log(`\nmedian orchestration overhead per cycle: ${med.toFixed(1)} ms (goal <= 20 ms: ${med <= 20 ? 'met' : 'NOT met'}); ratio direct/temporal time: ${(directTotal / temporalTotal).toFixed(2)}`);
    console.log(`machine: ${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}; ${new Date().toISOString().slice(0, 10)}\n`);

    const format = await measureFormatFailures({ chunks: 200, seed: cfg.seed + 1 });
    printTable(formatFailureTable(format.rows));
  } finally {
    await cleanups.run();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
