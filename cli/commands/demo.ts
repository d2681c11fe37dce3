import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { Client } from '@temporalio/client';
import { Command } from 'commander';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { formatActionChunk, renderSpotCheck } from '../../activities/relabel/spot-check';
import { importBridgeRlds } from '../../activities/data/bridge-import';
import { readManifest, writeDataset } from '../../activities/data/dataset-writer';
import { formatIssue, validateDataset } from '../../activities/data/validate';
import { simulateEpisodes } from '../../activities/robot/sim';
import { createObjectStore, getJson } from '../../activities/store';
import { DLanRecord } from '../../data-schemas/d-lan';
import { RELABEL_RECORDS_DIR } from '../../data-schemas/relabel';
import { printRelabelResult, runRelabel } from './relabel';
import { printShardResult, runShard } from './shard';
import { buildTinyModel, printTrainResult, runTrain } from './train';
import { printVqaResult, runVqaSweep } from './vqa';
import { fileUri } from '../../data-schemas/uri';
import type { ObjectStore } from '../../activities/store/types';
import { TaskQueue } from '../../data-schemas/workflows';
import type { storeSmoke } from '../../workflows';
import { joinUri } from '../../data-schemas/uri';
import { MANIFEST_FILE } from '../../data-schemas/manifest';
import { BRIDGE_SAMPLE, loadConfig, REPO_ROOT } from '../../infra/config';
import { DEFAULT_SIM_STATION, devUp, uiUrl } from '../../infra/dev-stack';
import { connectClient } from '../../infra/temporal';
import { printCampaignResult, runCampaign } from './robot';

const say = (line: string): void => console.log(line);
/** Trials per task of the demo's campaign: 5 tasks x 2 = 10 simulated episodes, about a minute. */
const DEMO_CAMPAIGN_TRIALS = 2;


async function firstRecord(store: ObjectStore, dlanUri: string): Promise<DLanRecord | undefined> {
  for await (const o of store.list(`${joinUri(dlanUri, RELABEL_RECORDS_DIR)}/`)) return getJson(store, o.uri, DLanRecord);
  return undefined;
}


export const BRIDGE_SAMPLE_LICENSE = 'MIT, from octo-models/octo tests/debug_dataset (data/samples/bridge-debug/LICENSE)';
export const DEMO_SIM_TASKS = ['put the carrot on the plate', 'pick up the eggplant', 'put the eggplant in the pan then lift the fish'];

async function exists(store: ObjectStore, datasetUri: string): Promise<boolean> {
  return (await store.head(joinUri(datasetUri, MANIFEST_FILE))) !== undefined;
}

async function validateOrThrow(store: ObjectStore, uri: string): Promise<string> {
  const report = await validateDataset(store, uri);
  if (!report.ok) throw new Error(`dataset ${uri} is invalid:\n${report.issues.map(formatIssue).join('\n')}`);
  const manifest = await readManifest(store, uri);
  return `${manifest.counts.trajectories} trajectories, ${manifest.counts.steps} steps, ${manifest.counts.files} files verified`;
}

/** The main job on embedded defaults: stack up, sample datasets in place and verified, UI address. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('bring the stack up, import the bundled Bridge episodes, simulate a small dataset, validate both, relabel both into D_lan, shard the Bridge D_lan, LoRA-train the tiny VLM on it, and sweep the bundled VQA items with it and its base, then run a short simulated robot evaluation campaign')
    .action(async () => {
      const config = loadConfig();
      const store = createObjectStore({ roots: config.storeRoots });
      await devUp(config, say);

      const bridgeUri = joinUri(config.storeUri, 'datasets', 'bridge-debug');
      if (await exists(store, bridgeUri)) say(`bridge-debug already imported at ${bridgeUri}`);
      else {
        say('importing the bundled BridgeData v2 episodes (RLDS TFRecord)...');
        await importBridgeRlds(store, { files: [BRIDGE_SAMPLE], outUri: bridgeUri, name: 'bridge-debug', license: BRIDGE_SAMPLE_LICENSE });
      }
      say(`  ${bridgeUri}: ${await validateOrThrow(store, bridgeUri)}`);

      const simUri = joinUri(config.storeUri, 'datasets', 'sim-demo-s0');
      if (await exists(store, simUri)) say(`sim-demo-s0 already simulated at ${simUri}`);
      else {
        say(`simulating ${DEMO_SIM_TASKS.length} tasks x 2 episodes (seed 0)...`);
        await writeDataset(
          store,
          simUri,
          { name: 'sim-demo-s0', kind: 'd_rob', source: { producer: 'vla-sim', producerVersion: '1', inputs: DEMO_SIM_TASKS } },
          simulateEpisodes({ tasks: DEMO_SIM_TASKS, n: 2, seed: 0 }),
        );
      }
      say(`  ${simUri}: ${await validateOrThrow(store, simUri)}`);

      // One workflow through the worker proves the whole path: client -> server -> worker -> store.
      const connection = await connectClient(config.temporal());
      try {
        const client = new Client({ connection, namespace: config.temporal().namespace });
        const smokeUri = joinUri(config.storeUri, 'smoke', 'demo.txt');
        const result = await client.workflow.execute<typeof storeSmoke>('storeSmoke', {
          taskQueue: TaskQueue.cpu,
          workflowId: WorkflowIds.storeSmoke('demo'),
          workflowIdConflictPolicy: 'USE_EXISTING',
          args: [{ outputUri: smokeUri, text: 'vla-pipelines demo' }],
        });
        say(`storeSmoke workflow wrote ${result.uri} (${result.bytes} bytes, ${result.created ? 'created' : 'already there'})`);
      } finally {
        await connection.close();
      }
      // Relabel both datasets into D_lan with the embedded heuristic labeler, through the workers.
      const relabelled: string[] = [];
      for (const uri of [bridgeUri, simUri]) {
        say(`relabelling ${uri} (heuristic labeler)...`);
        const result = await runRelabel(uri, { wait: true }, (line) => say(line));
        if (!result) throw new Error('relabel did not return a result');
        printRelabelResult(result, say);
        relabelled.push(result.outputUri);
      }
      const example = await firstRecord(store, relabelled[1]!);
      if (example) {
        say('');
        say(`a relabelled trajectory: ${example.trajectoryId} "${example.instruction}"`);
        for (const step of example.steps) {
          say(`  [${step.sourceSteps[0]},${step.sourceSteps[1]}) ${step.subtask}: ${step.motionPlan}`);
          say(`      chunk ${formatActionChunk(step.actionChunk)}`);
        }
        // A page a researcher opens to spot-check the labels against the frames.
        const spot = await renderSpotCheck(store, joinUri(relabelled[1]!, RELABEL_RECORDS_DIR, `${example.trajectoryId}.json`));
        const page = join(config.stateDir, 'reports', `${example.trajectoryId}.html`);
        mkdirSync(dirname(page), { recursive: true });
        writeFileSync(page, spot.html);
        writeFileSync(page.replace(/\.html$/, '.png'), spot.png);
        say(`  spot-check page: ${page} (and .png)`);
      }

      // Shard the Bridge D_lan and LoRA-train the tiny local VLM on it for a few CPU steps.
      say('');
      say(`sharding ${relabelled[0]} into WebDataset training shards...`);
      const shards = await runShard(relabelled[0]!, { validationFraction: 0.1, wait: true }, say);
      if (!shards) throw new Error('shardDataset did not return a result');
      printShardResult(shards, say);
      const tinyModel = join(config.stateDir, 'models', 'tiny-vlm');
      if (!existsSync(join(tinyModel, 'config.json'))) {
        say(`building the tiny test VLM (Gemma 3 architecture, random weights) in ${tinyModel}...`);
        await buildTinyModel(tinyModel, config.cacheDir, say);
      }
      say('training a LoRA adapter on it for 20 steps on the CPU (trainLora on the GPU queue)...');
      const trained = await runTrain(
        shards.manifestUri,
        {
          baseModel: tinyModel,
          out: joinUri(config.storeUri, 'runs', 'tiny-vlm-bridge-debug'),
          maxSteps: 20,
          lr: 1e-3,
          batchSize: 2,
          precision: 'fp32',
          checkpointEvery: 10,
          wait: true,
        },
        say,
      );
      if (!trained) throw new Error('trainLora did not return a result');
      printTrainResult(trained, say);

      // VQA retention of the tiny adapter against its base, on the bundled real benchmark items.
      say('');
      say('sweeping the bundled VQA items (MMBench en/cn, AI2D, MMMU-Pro) with the tiny base and its adapter (local backend)...');
      const samples = (dir: string): string => fileUri(join(REPO_ROOT, 'data', 'samples', 'vqa-samples', dir));
      const sweep = await runVqaSweep(
        {
          models: [
            { name: 'tiny-base', backend: 'local', baseModel: tinyModel },
            { name: 'tiny-lora', backend: 'local', baseModel: tinyModel, adapter: trained.adapterUri, baseOf: 'tiny-base' },
          ],
          benchmarks: [
            { benchmark: 'mmbench-en', uri: samples('mmbench') },
            { benchmark: 'mmbench-cn', uri: samples('mmbench') },
            { benchmark: 'ai2d', uri: samples('mmmu-pro-ai2d') },
            { benchmark: 'mmmu', uri: samples('mmmu-pro-ai2d') },
          ],
          outputUri: joinUri(config.storeUri, 'vqa', 'tiny-vlm-samples'),
          limit: 5,
          concurrency: 4,
          batchSize: 16,
          maxConcurrentEvaluations: 4,
          taskQueues: { openai: TaskQueue.cpu, gemini: TaskQueue.gemini, local: TaskQueue.gpu },
        },
        say,
      );
      if (!sweep) throw new Error('vqaSweep did not return a result');
      printVqaResult(sweep, say);

      // A short simulated evaluation campaign: the Figure-5 tasks on the simulated station sim-1.
      say('');
      say(`running a short evaluation campaign (the five Figure-5 tasks x ${DEMO_CAMPAIGN_TRIALS}) on the simulated station ${DEFAULT_SIM_STATION} (scripted policy, oracle verifier)...`);
      const campaign = await runCampaign(
        {
          tasks: ['pick_up', 'pick_place_lift', 'pick_place_long', 'multilingual', 'item_above'],
          trials: DEMO_CAMPAIGN_TRIALS,
          stations: [DEFAULT_SIM_STATION],
          policy: { kind: 'scripted', seed: 0, actionStdMeters: 0.002, formatErrorRate: 0.05 },
          verifier: { kind: 'oracle' },
          outputUri: joinUri(config.storeUri, 'campaigns', 'demo-figure5'),
        },
        say,
      );
      if (!campaign) throw new Error('evalCampaign did not return a result');
      printCampaignResult(campaign, say);

      say('');
      say(`Temporal Web UI: ${uiUrl(config) ?? '(not the local dev server)'}`);
      say(`datasets:        ${bridgeUri}`);
      say(`                 ${simUri}`);
      say(`D_lan:           ${relabelled.join('\n                 ')}`);
      say(`shards:          ${shards.manifestUri}`);
      say(`LoRA adapter:    ${trained.adapterUri}`);
      say(`VQA report:      ${sweep.reportUri}`);
      say(`robot report:    ${campaign.reportUri}`);
      say('stop the stack:  npm run vla -- dev down');
    });
}
