/**
 * Trainer throughput through the pipeline (trainLora workflow -> GPU worker activity -> trainer
 * child process, with heartbeats, progress signals and checkpoint uploads) against the same trainer
 * run directly on the same staged shards with the same config. Ratio = tokens/s through the
 * workflow / tokens/s direct (goal >= 0.97). Rounds alternate direct and workflow runs so drift in
 * the machine's speed hits both alike.
 *
 *   npx tsx bench/train.ts [--steps=200] [--rounds=5] [--checkpoint-every=50] [--seq=512] [--batch=2]
 *
 * Everything runs here: its own Temporal dev server (SQLite in a temp dir) on free loopback ports,
 * the CPU and GPU workers in this process, the tiny VLM (python -m vla_py.tiny_model) on the CPU.
 * With a GPU, point --base-model at a real small VLM directory and drop --precision to bf16.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { trainerConfigFor } from '../activities/training/trainer-config';
import { FileStore } from '../activities/store';
import { buildTinyModel } from '../cli/commands/train';
import { TrainerEvent, TrainLoraInput } from '../data-schemas/training';
import { fileUri } from '../data-schemas/uri';
import { loadConfig } from '../infra/config';
import { ensurePythonEnv } from '../infra/python';
import type { PythonEnv } from '../activities/runtime/python-env';
import { importBridgeSample } from '../test/helpers/datasets';
import { createCpuWorker } from '../workers/cpu';
import { createGpuWorker } from '../workers/gpu';
import type { relabelDataset, shardDataset, trainLora } from '../workflows';
import { option, stringOption } from './options';
import { Cleanups, startBenchTemporal } from './temporal';

const cfg = {
  steps: option('steps', 200),
  rounds: option('rounds', 5),
  checkpointEvery: option('checkpoint-every', 50),
  seq: option('seq', 512),
  batch: option('batch', 2),
  baseModel: stringOption('base-model'),
  precision: (stringOption('precision') ?? 'fp32') as 'fp32' | 'bf16',
};
const NAMESPACE = 'vla-bench';
const store = new FileStore();
const log = (line: string): void => console.log(line);

interface RunFigures {
  tokensPerSecond: number;
  wallSeconds: number;
  steps: number;
}

/** Runs the trainer as the activity would, minus Temporal: same config, same staged shards. */
async function runDirect(python: PythonEnv, config: object, dir: string): Promise<RunFigures> {
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, 'trainer-config.json');
  writeFileSync(configPath, JSON.stringify(config));
  const started = performance.now();
  const child = spawn(python.python, ['-m', 'vla_py.train', '--config', configPath], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'], env: python.env });
  let done: Extract<TrainerEvent, { event: 'done' }> | undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const parsed = TrainerEvent.safeParse(JSON.parse(line));
    if (parsed.success && parsed.data.event === 'done') done = parsed.data;
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0 || !done) throw new Error(`direct trainer run failed with code ${code}`);
  return { tokensPerSecond: done.metrics.train_tokens_per_second ?? NaN, wallSeconds: (performance.now() - started) / 1000, steps: done.step };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const dir = mkdtempSync(join(tmpdir(), 'vla-bench-train-'));
  const python = await ensurePythonEnv(config.cacheDir, log);
  const cleanups = new Cleanups();
  try {
    const { connection, native, client, workflowBundle } = await startBenchTemporal({ dir, namespace: NAMESPACE, cleanups, log });
    const workDir = join(dir, 'gpu-work');
    const cpu = await createCpuWorker({ connection: native, namespace: NAMESPACE, taskQueue: 'bench-cpu', workflowBundle, deps: { store } });
    const gpu = await createGpuWorker({
      connection: native,
      clientConnection: connection,
      namespace: NAMESPACE,
      taskQueue: 'bench-gpu',
      deps: { store, workDir, pythonEnv: () => Promise.resolve(python), gitRevision: 'bench' },
    });
    await cpu.runUntil(
      gpu.runUntil(async () => {
        const baseModel = cfg.baseModel ?? (await buildTinyModel(join(dir, 'tiny-vlm'), config.cacheDir));
        const bridge = fileUri(join(dir, 'bridge'));
        await importBridgeSample(store, bridge);
        const labels = await client.workflow.execute<typeof relabelDataset>('relabelDataset', { taskQueue: 'bench-cpu', workflowId: 'bench-relabel', args: [{ datasetUri: bridge }] });
        const shards = await client.workflow.execute<typeof shardDataset>('shardDataset', {
          taskQueue: 'bench-cpu',
          workflowId: 'bench-shard',
          args: [{ datasetUri: labels.outputUri, outputUri: fileUri(join(dir, 'shards')), validationFraction: 0 }],
        });
        log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; model ${baseModel}; ${cfg.steps} steps, batch ${cfg.batch}, seq ${cfg.seq}, checkpoint every ${cfg.checkpointEvery}`);

        const results: { direct: RunFigures[]; workflow: RunFigures[] } = { direct: [], workflow: [] };
        for (let round = 0; round < cfg.rounds; round++) {
          const input = TrainLoraInput.parse({
            shardsUri: shards.manifestUri,
            baseModel,
            outputUri: fileUri(join(dir, 'runs', `workflow-${round}`)),
            maxSteps: cfg.steps,
            checkpointEvery: cfg.checkpointEvery,
            perDeviceBatchSize: cfg.batch,
            maxSequenceLength: cfg.seq,
            precision: cfg.precision,
            gpuTaskQueue: 'bench-gpu',
          });
          const viaWorkflow = async (): Promise<RunFigures> => {
            const started = performance.now();
            const result = await client.workflow.execute<typeof trainLora>('trainLora', { taskQueue: 'bench-cpu', workflowId: `bench-train-${round}`, args: [input] });
            return { tokensPerSecond: result.metrics.train_tokens_per_second ?? NaN, wallSeconds: (performance.now() - started) / 1000, steps: result.steps };
          };
          const directly = async (): Promise<RunFigures> => {
            // The shards the workflow staged on this machine (cached by sha256), the same config.
            const stagedShards = readdirSync(join(workDir, 'shards')).filter((f) => f.endsWith('.tar')).map((f) => join(workDir, 'shards', f));
            const directDir = join(dir, 'direct', String(round));
            const config = trainerConfigFor(input, { trainShards: stagedShards, validationShards: [], outputDir: join(directDir, 'output'), resumeFrom: null, gitRevision: 'bench' });
            return runDirect(python, config, directDir);
          };
          // The first round stages the shards through the workflow; later rounds alternate the order.
          let wf: RunFigures;
          let direct: RunFigures;
          if (round % 2 === 0) {
            wf = await viaWorkflow();
            direct = await directly();
          } else {
            direct = await directly();
            wf = await viaWorkflow();
          }
          results.workflow.push(wf);
          results.direct.push(direct);
          log(
            `round ${round + 1}: direct ${direct.tokensPerSecond.toFixed(1)} tok/s (${direct.wallSeconds.toFixed(1)} s wall), workflow ${wf.tokensPerSecond.toFixed(1)} tok/s (${wf.wallSeconds.toFixed(1)} s wall), ratio ${(wf.tokensPerSecond / direct.tokensPerSecond).toFixed(3)}`,
          );
        }
        const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
        const direct = mean(results.direct.map((r) => r.tokensPerSecond));
        const workflow = mean(results.workflow.map((r) => r.tokensPerSecond));
        const ratios = results.workflow.map((w, i) => w.tokensPerSecond / results.direct[i]!.tokensPerSecond).sort((a, b) => a - b);
        const median = ratios[Math.floor(ratios.length / 2)]!;
        log(`trainer tokens/s: direct ${direct.toFixed(1)}, through trainLora ${workflow.toFixed(1)}; ratio of means ${(workflow / direct).toFixed(3)}, median of per-round ratios ${median.toFixed(3)} (goal >= 0.97)`);
        log(
          `wall time per run: direct ${mean(results.direct.map((r) => r.wallSeconds)).toFixed(1)} s, through trainLora ${mean(results.workflow.map((r) => r.wallSeconds)).toFixed(1)} s (staging, checkpoint and adapter uploads included)`,
        );
      }),
    );
  } finally {
    await cleanups.run();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
