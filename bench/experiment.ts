/**
 * bench/experiment: what the `experiment` workflow costs over running its stages by hand.
 *
 * The small experiment (bundled Bridge sample, heuristic labeler, one variant on the tiny model,
 * VQA on a few bundled MMBench items, a one-trial scripted campaign on a simulated station) runs
 * (a) as one `experiment` workflow on a fresh storeUri (nothing reused) and (b) as the same stage
 * workflows (relabelDataset, shardDataset, trainLora, vqaSweep, evalCampaign) started one after
 * another by this client, each into a fresh folder, with the very inputs the experiment gives
 * them: a warm-up experiment's history supplies each child's input, with its store root swapped
 * for the direct run's. Ratio = direct wall time / experiment wall time (goal >= 0.95). Rounds
 * alternate direct and experiment so drift in the machine's speed hits both. Last, an experiment
 * with a new name on the warm-up's storeUri, where every stage is reused: the cost of a fully
 * reused experiment.
 *
 * The experiment runs the sweep and the campaign side by side; the direct path runs them one after
 * the other, so the bench also prints the direct critical path (relabel + shard + train + the
 * longer of sweep and campaign) and the ratio against it.
 *
 *   npx tsx bench/experiment.ts [--rounds=2] [--trajectories=3] [--steps=4] [--vqa-limit=2]
 *
 * Everything runs here: its own Temporal dev server on free loopback ports, the CPU, GPU and
 * station workers in this process, the tiny VLM on the CPU.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '../activities/store';
import { buildTinyModel } from '../cli/commands/train';
import { ExperimentResult, type ExperimentInputRaw, type StageKind } from '../data-schemas/experiment';
import { LabelerChoice, labelerKey } from '../data-schemas/relabel';
import { StationConfig } from '../data-schemas/station';
import { fileUri } from '../data-schemas/uri';
import { WorkflowIds } from '../data-schemas/workflow-ids';
import { loadConfig, REPO_ROOT } from '../infra/config';
import { ensurePythonEnv } from '../infra/python';
import { importBridgeSample } from '../test/helpers/datasets';
import { createCpuWorker } from '../workers/cpu';
import { createGpuWorker } from '../workers/gpu';
import { closeStation, createStationWorker } from '../workers/station';
import type { experiment } from '../workflows';
import { option } from './options';
import { printTable } from './table';
import { Cleanups, runBenchWorker, startBenchTemporal } from './temporal';

const cfg = {
  rounds: option('rounds', 2),
  trajectories: option('trajectories', 3),
  steps: option('steps', 4),
  vqaLimit: option('vqa-limit', 2),
};
const NAMESPACE = 'vla-bench';
const CPU_QUEUE = 'bench-cpu';
const GPU_QUEUE = 'bench-gpu';
const STATION = 'bench-sim';
const store = new FileStore();
const log = (line: string): void => console.error(`[bench:experiment] ${line}`);

/** The stage workflows in the order the experiment starts them, with the stage each one is. */
const STAGES = [
  { workflowType: 'relabelDataset', stage: 'relabel', idOf: (args: ChildArgs) => WorkflowIds.relabelDataset(args.datasetUri as string, labelerKey(LabelerChoice.parse(args.labeler)), args.outputUri as string) },
  { workflowType: 'shardDataset', stage: 'shard', idOf: (args: ChildArgs) => WorkflowIds.shardDataset(args.outputUri as string) },
  { workflowType: 'trainLora', stage: 'train', idOf: (args: ChildArgs) => WorkflowIds.trainLora(args.outputUri as string) },
  { workflowType: 'vqaSweep', stage: 'vqa', idOf: (args: ChildArgs) => WorkflowIds.vqaSweep(args.outputUri as string) },
  { workflowType: 'evalCampaign', stage: 'campaign', idOf: (args: ChildArgs) => WorkflowIds.evalCampaign(args.outputUri as string) },
] as const satisfies readonly { workflowType: string; stage: StageKind; idOf: (args: ChildArgs) => string }[];

type ChildArgs = Record<string, unknown>;
type StageSeconds = Partial<Record<StageKind, number>>;

interface RunFigures {
  wallSeconds: number;
  stages: StageSeconds;
}

/** The input each stage workflow got from an experiment, read from the experiment's history. */
async function childInputs(handle: WorkflowHandle): Promise<Map<string, ChildArgs>> {
  const history = await handle.fetchHistory();
  const inputs = new Map<string, ChildArgs>();
  for (const event of history.events ?? []) {
    const started = event.startChildWorkflowExecutionInitiatedEventAttributes;
    const type = started?.workflowType?.name;
    const payload = started?.input?.payloads?.[0];
    if (!type || !payload) continue;
    if (inputs.has(type)) throw new Error(`the experiment started ${type} twice; the bench runs one variant`);
    inputs.set(type, defaultPayloadConverter.fromPayload(payload));
  }
  return inputs;
}

/** Each stage's wall time, from the experiment's stage rows (started before the child workflow, finished when its result came back). */
function experimentStageSeconds(result: ExperimentResult): StageSeconds {
  const seconds: StageSeconds = {};
  for (const row of result.stages) {
    if (row.startedAt && row.finishedAt) seconds[row.stage] = (Date.parse(row.finishedAt) - Date.parse(row.startedAt)) / 1000;
  }
  return seconds;
}

/** relabel + shard + train + the longer of the sweep and the campaign: the direct run's time had it overlapped those two as the experiment does. */
const criticalPath = (s: StageSeconds): number => (s.relabel ?? 0) + (s.shard ?? 0) + (s.train ?? 0) + Math.max(s.vqa ?? 0, s.campaign ?? 0);

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function main(): Promise<void> {
  const config = loadConfig();
  const dir = mkdtempSync(join(tmpdir(), 'vla-bench-experiment-'));
  const python = await ensurePythonEnv(config.cacheDir, log);
  const cleanups = new Cleanups();
  try {
    const { connection, native, client, workflowBundle } = await startBenchTemporal({ dir, namespace: NAMESPACE, cleanups, log });
    runBenchWorker(await createCpuWorker({ connection: native, namespace: NAMESPACE, taskQueue: CPU_QUEUE, workflowBundle, deps: { store } }), cleanups, log);
    runBenchWorker(
      await createGpuWorker({
        connection: native,
        clientConnection: connection,
        namespace: NAMESPACE,
        taskQueue: GPU_QUEUE,
        deps: { store, workDir: join(dir, 'gpu-work'), pythonEnv: () => Promise.resolve(python), gitRevision: 'bench' },
      }),
      cleanups,
      log,
    );
    const station = await createStationWorker({
      workflowBundle,
      connection: native,
      namespace: NAMESPACE,
      stationId: STATION,
      station: StationConfig.parse({ kind: 'sim' }),
      store,
      stateDir: join(dir, 'station'),
    });
    cleanups.add('station driver', () => closeStation(station.driver));
    runBenchWorker(station.worker, cleanups, log);

    const baseModel = await buildTinyModel(join(dir, 'tiny-vlm'), config.cacheDir, log);
    // Outside every store root: the direct runs swap the experiment's root for their own in the inputs.
    const datasetUri = fileUri(join(dir, 'data', 'bridge'));
    await importBridgeSample(store, datasetUri, cfg.trajectories);
    const experimentInput = (name: string, storeUri: string): ExperimentInputRaw => ({
      name,
      storeUri,
      datasetUri,
      shard: { validationFraction: 0 },
      // One variant: parallel trainings would flatter the experiment against the one-after-another direct path.
      variants: [{ name: 'vlm2vla', baseModel, maxSteps: cfg.steps, learningRate: 1e-3, precision: 'fp32', checkpointEvery: cfg.steps }],
      // AI2D's answers stop at 16 new tokens; the tiny random model writes every answer to the limit (1024 on MMBench-en), whose run-to-run spread would swamp the ratio.
      vqa: { benchmarks: [{ benchmark: 'ai2d', uri: fileUri(join(REPO_ROOT, 'data', 'samples', 'vqa-samples', 'mmmu-pro-ai2d')) }], limit: cfg.vqaLimit, concurrency: 2 },
      campaign: {
        tasks: ['pick_up'],
        trials: 1,
        stations: [STATION],
        policy: { kind: 'scripted', seed: 0, actionStdMeters: 0, formatErrorRate: 0, wrongSubtaskRate: 0 },
      },
      taskQueues: { gpu: GPU_QUEUE },
    });

    /** One experiment; every stage must end `want` (nothing reused on a fresh storeUri, everything on a sealed one). */
    const runExperiment = async (name: string, storeUri: string, want: 'done' | 'reused'): Promise<RunFigures & { result: ExperimentResult; workflowId: string }> => {
      const workflowId = WorkflowIds.experiment(name);
      const started = performance.now();
      const raw = await client.workflow.execute<typeof experiment>('experiment', { taskQueue: CPU_QUEUE, workflowId, args: [experimentInput(name, storeUri)] });
      const wallSeconds = (performance.now() - started) / 1000;
      const result = ExperimentResult.parse(raw);
      const wrong = result.stages.filter((s) => s.state !== want);
      if (result.state !== 'completed' || wrong.length > 0) {
        throw new Error(`experiment ${name} ended ${result.state}; stages not ${want}: ${wrong.map((s) => `${s.id}=${s.state}${s.detail ? ` (${s.detail})` : ''}`).join(', ')}`);
      }
      return { wallSeconds, stages: experimentStageSeconds(result), result, workflowId };
    };

    log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; ${cfg.trajectories} Bridge trajectories, heuristic labeler; ONE variant (${cfg.steps} steps, fp32, tiny model); VQA ai2d limit ${cfg.vqaLimit}; 1-trial scripted campaign on a simulated station`);
    // Warm-up (bundle caches, Python imports, the first trainer and model loads), not measured; its history gives the direct path its inputs.
    const warmRoot = fileUri(join(dir, 'warm'));
    const warm = await runExperiment('bench-warm', warmRoot, 'done');
    const templates = await childInputs(client.workflow.getHandle(warm.workflowId));
    log(`warm-up experiment: ${warm.wallSeconds.toFixed(1)} s; child inputs read for ${[...templates.keys()].join(', ')}`);

    /** The same stage workflows, one after another, with the experiment's inputs rooted at `root` instead of the warm-up's storeUri. */
    const runDirect = async (root: string): Promise<RunFigures> => {
      const stages: StageSeconds = {};
      const started = performance.now();
      for (const { workflowType, stage, idOf } of STAGES) {
        const template = templates.get(workflowType);
        if (!template) throw new Error(`the warm-up experiment started no ${workflowType}`);
        const text = JSON.stringify(template).replaceAll(warmRoot, root);
        if (text.includes(join(dir, 'warm'))) throw new Error(`${workflowType}'s input names the warm-up's folder outside its storeUri: ${text}`);
        const args = JSON.parse(text) as ChildArgs;
        const stageStarted = performance.now();
        await client.workflow.execute(workflowType, { taskQueue: CPU_QUEUE, workflowId: idOf(args), args: [args] });
        stages[stage] = (performance.now() - stageStarted) / 1000;
      }
      return { wallSeconds: (performance.now() - started) / 1000, stages };
    };

    const rounds: { direct: RunFigures; experiment: RunFigures }[] = [];
    for (let round = 1; round <= cfg.rounds; round++) {
      const direct = await runDirect(fileUri(join(dir, `direct-${round}`)));
      const exp = await runExperiment(`bench-r${round}`, fileUri(join(dir, `experiment-${round}`)), 'done');
      rounds.push({ direct, experiment: exp });
      log(`round ${round}: direct ${direct.wallSeconds.toFixed(1)} s, experiment ${exp.wallSeconds.toFixed(1)} s, ratio ${(direct.wallSeconds / exp.wallSeconds).toFixed(3)}`);
    }
    const reused = await runExperiment('bench-reused', warmRoot, 'reused');

    const s = (x: number | undefined): string => (x === undefined ? '-' : x.toFixed(1));
    const rows: string[][] = [['round', 'path', 'relabel (s)', 'shard (s)', 'train (s)', 'vqa (s)', 'campaign (s)', 'critical path (s)', 'wall (s)']];
    for (const [i, r] of rounds.entries()) {
      for (const [path, f] of [['direct', r.direct], ['experiment', r.experiment]] as const) {
        rows.push([String(i + 1), path, s(f.stages.relabel), s(f.stages.shard), s(f.stages.train), s(f.stages.vqa), s(f.stages.campaign), s(criticalPath(f.stages)), s(f.wallSeconds)]);
      }
    }
    rows.push(['-', 'experiment, all reused', '-', '-', '-', '-', '-', '-', s(reused.wallSeconds)]);
    console.log('');
    printTable(rows);
    const ratio = median(rounds.map((r) => r.direct.wallSeconds / r.experiment.wallSeconds));
    const criticalRatio = median(rounds.map((r) => criticalPath(r.direct.stages) / r.experiment.wallSeconds));
    const overhead = median(rounds.map((r) => r.experiment.wallSeconds - criticalPath(r.experiment.stages)));
    // Free of the stages' own run-to-run spread (the sweep's model loads dominate it on a busy machine).
    const inside = median(rounds.map((r) => criticalPath(r.experiment.stages) / r.experiment.wallSeconds));
    console.log(`\nmedian ratio direct (one after another) / experiment wall time: ${ratio.toFixed(3)} (goal >= 0.95: ${ratio >= 0.95 ? 'met' : 'NOT met'})`);
    console.log(`median ratio direct critical path (sweep and campaign overlapped, as the experiment runs them) / experiment: ${criticalRatio.toFixed(3)}`);
    console.log(`experiment time outside its stage workflows (wall - its own critical path), median: ${overhead.toFixed(1)} s; share of its wall time inside them: ${inside.toFixed(3)}`);
    console.log(`fully reused experiment (new name, same storeUri, every stage reused): ${reused.wallSeconds.toFixed(1)} s`);
    console.log(`machine: ${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}; ${new Date().toISOString().slice(0, 16)} UTC; ${cfg.rounds} rounds, one variant\n`);
  } finally {
    await cleanups.run();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
