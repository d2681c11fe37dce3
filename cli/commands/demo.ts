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
import { buildTinyModel } from './train';
import { printVqaResult } from './vqa';
import { fileUri } from '../../data-schemas/uri';
import type { ObjectStore } from '../../activities/store/types';
import { TaskQueue } from '../../data-schemas/workflows';
import type { storeSmoke } from '../../workflows';
import { joinUri } from '../../data-schemas/uri';
import { MANIFEST_FILE } from '../../data-schemas/manifest';
import { BRIDGE_SAMPLE, loadConfig, REPO_ROOT } from '../../infra/config';
import { DEFAULT_SIM_STATION, devUp, uiUrl } from '../../infra/dev-stack';
import { connectClient } from '../../infra/temporal';
import { printCampaignResult } from './robot';
import { formatExperimentResult, startExperiment } from './experiment';
import { ExperimentFile, ExperimentInput, type ExperimentInputRaw } from '../../data-schemas/experiment';

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
    .description('bring the stack up, import the bundled Bridge episodes, simulate a small dataset, validate both, relabel the simulated one (with a spot-check page), then run one experiment on the Bridge episodes: relabel, shard, LoRA-train the tiny VLM, sweep the bundled VQA items with it and its base, and a short simulated robot evaluation campaign')
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
      // The simulated dataset through relabelDataset alone, for a spot-check page of its labels.
      say(`relabelling ${simUri} (heuristic labeler)...`);
      const simLabels = await runRelabel(simUri, { wait: true }, (line) => say(line));
      if (!simLabels) throw new Error('relabel did not return a result');
      printRelabelResult(simLabels, say);
      const example = await firstRecord(store, simLabels.outputUri);
      if (example) {
        say('');
        say(`a relabelled trajectory: ${example.trajectoryId} "${example.instruction}"`);
        for (const step of example.steps) {
          say(`  [${step.sourceSteps[0]},${step.sourceSteps[1]}) ${step.subtask}: ${step.motionPlan}`);
          say(`      chunk ${formatActionChunk(step.actionChunk)}`);
        }
        // A page a researcher opens to spot-check the labels against the frames.
        const spot = await renderSpotCheck(store, joinUri(simLabels.outputUri, RELABEL_RECORDS_DIR, `${example.trajectoryId}.json`));
        const page = join(config.stateDir, 'reports', `${example.trajectoryId}.html`);
        mkdirSync(dirname(page), { recursive: true });
        writeFileSync(page, spot.html);
        writeFileSync(page.replace(/\.html$/, '.png'), spot.png);
        say(`  spot-check page: ${page} (and .png)`);
      }

      // The method on the Bridge episodes as one experiment workflow: relabel, shard, LoRA-train the
      // tiny VLM, VQA retention against its base, a short campaign; each stage reused when unchanged.
      const tinyModel = join(config.stateDir, 'models', 'tiny-vlm');
      if (!existsSync(join(tinyModel, 'config.json'))) {
        say('');
        say(`building the tiny test VLM (Gemma 3 architecture, random weights) in ${tinyModel}...`);
        await buildTinyModel(tinyModel, config.cacheDir, say);
      }
      const samples = (dir: string): string => fileUri(join(REPO_ROOT, 'data', 'samples', 'vqa-samples', dir));
      const input: ExperimentInputRaw = {
        name: 'demo',
        storeUri: config.storeUri,
        datasetUri: bridgeUri,
        relabel: { labeler: { name: 'heuristic' } },
        shard: { validationFraction: 0.1 },
        variants: [{ name: 'tiny-lora', baseModel: tinyModel, maxSteps: 20, learningRate: 1e-3, perDeviceBatchSize: 2, precision: 'fp32', checkpointEvery: 10 }],
        vqa: {
          benchmarks: [
            { benchmark: 'mmbench-en', uri: samples('mmbench') },
            { benchmark: 'mmbench-cn', uri: samples('mmbench') },
            { benchmark: 'ai2d', uri: samples('mmmu-pro-ai2d') },
            { benchmark: 'mmmu', uri: samples('mmmu-pro-ai2d') },
          ],
          limit: 5,
          concurrency: 4,
          batchSize: 16,
          maxConcurrentEvaluations: 4,
        },
        campaign: {
          tasks: ['pick_up', 'pick_place_lift', 'pick_place_long', 'multilingual', 'item_above'],
          trials: DEMO_CAMPAIGN_TRIALS,
          stations: [DEFAULT_SIM_STATION],
          // The tiny model's random weights cannot drive an arm: the scripted policy stands in.
          policy: { kind: 'scripted', seed: 0, actionStdMeters: 0.002, formatErrorRate: 0.05 },
          verifier: { kind: 'oracle' },
        },
      };
      say('');
      say(`running the experiment "demo" on ${bridgeUri}: relabel, shard, LoRA-train the tiny VLM for 20 CPU steps, sweep the bundled VQA items with it and its base, and the five Figure-5 tasks x ${DEMO_CAMPAIGN_TRIALS} on the simulated station ${DEFAULT_SIM_STATION} (scripted policy, oracle verifier)...`);
      const result = await startExperiment(input, ExperimentInput.parse(input), 'the demo', { wait: true }, say);
      if (!result) throw new Error('the experiment did not return a result');
      for (const line of formatExperimentResult(result, new Date())) say(line);
      const outputs = await getJson(store, result.statusUri, ExperimentFile);
      const { relabel, shard, vqa } = outputs.outputs;
      const trained = outputs.outputs.train['tiny-lora'];
      const campaign = outputs.outputs.campaign['tiny-lora'];
      if (!relabel || !shard || !trained || !vqa || !campaign) throw new Error(`the experiment ended ${result.state} without every stage's result: ${result.statusUri}`);
      say('');
      printVqaResult(vqa, say);
      say('');
      printCampaignResult(campaign, say);

      say('');
      say(`Temporal Web UI: ${uiUrl(config) ?? '(not the local dev server)'}`);
      say(`datasets:        ${bridgeUri}`);
      say(`                 ${simUri}`);
      say(`D_lan:           ${simLabels.outputUri}`);
      say(`                 ${relabel.outputUri}`);
      say(`shards:          ${shard.manifestUri}`);
      say(`LoRA adapter:    ${trained.adapterUri}`);
      say(`VQA report:      ${vqa.reportUri}`);
      say(`robot report:    ${campaign.reportUri}`);
      say(`experiment:      ${result.reportUri}`);
      say(`its lineage:     npm run vla -- lineage ${trained.adapterUri}`);
      say('stop the stack:  npm run vla -- dev down');
    });
}
