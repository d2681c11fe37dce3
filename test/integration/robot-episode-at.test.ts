import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash, randomUUID } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import sharp from 'sharp';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digitsToActionTokens, loadActionTokenMapping } from '../../activities/robot/policy/action-tokens';
import { FileStore, getJson } from '../../activities/store';
import { buildTinyModel } from '../../cli/commands/train';
import { actionPrompt, formatActionChunk, formatSubtaskList, motionPlanPrompt, subtasksPrompt } from '../../data-schemas/prompts';
import { EpisodeRecord, RobotEpisodeResult, type RobotEpisodeInputRaw } from '../../data-schemas/robot';
import { ActionTokenMapping, SHARD_FORMAT, SHARD_FORMAT_VERSION, shardPath, type ShardManifest, type ShardSample, type ShardStage } from '../../data-schemas/training';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { TaskQueue } from '../../data-schemas/workflows';
import { loadConfig } from '../../infra/config';
import { ensurePythonEnv } from '../../infra/python';
import type { PythonEnv } from '../../activities/runtime/python-env';
import type { robotEpisode, trainLora } from '../../workflows';
import { createOpenAIServer } from '../fixtures/openai-server';
import { startStationProcess, type StationProcess } from '../helpers/stations';
import { connectTestTemporal, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuAndGpuWorkers } from '../helpers/workers';

/**
 * The VLM2VLA-AT column end to end: a tiny action-tokens adapter trained by trainLora, then
 * robotEpisode on a simulated station worker process with that adapter behind the local backend
 * (transformers + peft, its answers decoded from the real rare tokens) and behind an
 * OpenAI-compatible server (vLLM returns the rare tokens as text). The chunks must parse and run.
 */
const INSTRUCTION = 'pick up the eggplant';
const SUBTASKS = ['Move to eggplant', 'Grasp eggplant'];
const PLAN = 'Move forward and down, gripper open.';
const CHUNK = [[0.01, 0, -0.01, 1]] as [number, number, number, number][];

/**
 * A shard set the tiny model can learn by heart in a few dozen CPU steps: the three prompts of this
 * test's episode, each always answered the same way, over differently coloured frames (so the answer
 * does not hang on the image). Written in shardDataset's format (WebDataset tar + shards.json).
 */
async function writeMemorisedShards(store: FileStore, root: string): Promise<string> {
  const answers: { stage: ShardStage; prompt: string; answer: string }[] = [
    { stage: 'subtasks', prompt: subtasksPrompt(INSTRUCTION), answer: formatSubtaskList(SUBTASKS) },
    ...SUBTASKS.flatMap((subtask) => [
      { stage: 'motion_plan' as const, prompt: motionPlanPrompt(subtask), answer: PLAN },
      { stage: 'action' as const, prompt: actionPrompt(subtask, PLAN), answer: formatActionChunk(CHUNK) },
    ]),
  ];
  const pack = tar.pack();
  const packed = buffer(pack);
  let samples = 0;
  for (let copy = 0; copy < 6; copy++) {
    const jpg = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 40 * copy, g: 200 - 30 * copy, b: 90 } } }).jpeg().toBuffer();
    for (const [i, a] of answers.entries()) {
      const key = `at-memo-c${copy}-s${i}`;
      const sample: ShardSample = {
        key,
        trajectoryId: `at-memo-${copy}`,
        stage: a.stage,
        step: i,
        image: 'jpg',
        messages: [
          { role: 'user', content: [{ type: 'image' }, { type: 'text', text: a.prompt }] },
          { role: 'assistant', content: [{ type: 'text', text: a.answer }] },
        ],
      };
      pack.entry({ name: `${key}.json` }, JSON.stringify(sample));
      pack.entry({ name: `${key}.jpg` }, jpg);
      samples++;
    }
  }
  pack.finalize();
  const shard = await packed;
  await store.put(joinUri(root, shardPath('train', 0)), shard);
  const manifest: ShardManifest = {
    format: SHARD_FORMAT,
    formatVersion: SHARD_FORMAT_VERSION,
    createdAt: new Date().toISOString(),
    source: { dataset: joinUri(root, 'd_lan'), datasetManifestSha256: '0'.repeat(64), labeler: { name: 'heuristic', version: 'memorised' }, promptVersion: 'v1' },
    split: { validationFraction: 0, seed: 0 },
    targetShardBytes: shard.length,
    counts: { shards: 1, samples, bytes: shard.length, bySplit: { train: { trajectories: 6, samples, shards: 1 }, validation: { trajectories: 0, samples: 0, shards: 0 } }, byStage: { subtasks: 6, motion_plan: 12, action: 12 } },
    shards: [{ path: shardPath('train', 0), split: 'train', index: 0, sha256: createHash('sha256').update(shard).digest('hex'), bytes: shard.length, samples, trajectories: Array.from({ length: 6 }, (_, c) => `at-memo-${c}`) }],
  };
  const uri = joinUri(root, 'shards.json');
  await store.put(uri, JSON.stringify(manifest));
  return uri;
}

describe('VLM2VLA-AT: an action-tokens adapter drives robotEpisode on a simulated station', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let dir: string;
  let storeUri: string;
  let python: PythonEnv;
  let baseModel: string;
  let adapterUri: string;
  let mapping: ActionTokenMapping;
  const stations: StationProcess[] = [];

  const workers = <T>(fn: (queues: { cpu: string; gpu: string }) => Promise<T>): Promise<T> => withCpuAndGpuWorkers(env, { store, workDir: join(dir, 'gpu-work'), python }, fn);

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-at-episode-'));
    storeUri = fileUri(join(dir, 'store'));
    python = await ensurePythonEnv(loadConfig().cacheDir);
    baseModel = await buildTinyModel(join(dir, 'tiny-vlm'), loadConfig().cacheDir);
    const shardsUri = await writeMemorisedShards(store, joinUri(storeUri, 'shards'));
    const result = await workers(({ cpu, gpu }) =>
      env.client.workflow.execute<typeof trainLora>('trainLora', {
        taskQueue: cpu,
        workflowId: `train-at-${randomUUID()}`,
        args: [
          {
            shardsUri,
            baseModel,
            outputUri: joinUri(storeUri, 'runs', 'at'),
            actionRepresentation: 'action-tokens',
            maxSteps: 60,
            perDeviceBatchSize: 5,
            learningRate: 1e-2,
            lora: { dropout: 0 },
            checkpointEvery: 1000,
            precision: 'fp32',
            maxSequenceLength: 256,
            gpuTaskQueue: gpu,
          },
        ],
      }),
    );
    expect(result.actionRepresentation).toBe('action-tokens');
    adapterUri = result.adapterUri;
    mapping = await loadActionTokenMapping(store, adapterUri);
  }, 900_000);

  afterAll(async () => {
    await Promise.all(stations.map((s) => s.stop()));
    await env?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const station = async (): Promise<StationProcess> => {
    const s = await startStationProcess({ stateDir: join(dir, 'state'), storeUri });
    stations.push(s);
    return s;
  };
  const episode = async (input: Omit<RobotEpisodeInputRaw, 'outputUri' | 'instruction'>): Promise<{ result: RobotEpisodeResult; record: EpisodeRecord }> => {
    const id = `episode-at-${randomUUID().slice(0, 8)}`;
    const raw = await env.client.workflow.execute<typeof robotEpisode>('robotEpisode', {
      taskQueue: TaskQueue.station(input.stationId),
      workflowId: id,
      args: [{ outputUri: joinUri(storeUri, 'episodes', id), instruction: INSTRUCTION, seed: 2, verifier: { kind: 'oracle' }, limits: { maxCycles: 2, maxRepairs: 1 }, ...input }],
    });
    const result = RobotEpisodeResult.parse(raw);
    return { result, record: await getJson(store, result.recordUri, EpisodeRecord) };
  };
  /** Every cycle planned, wrote a chunk that parsed, and the arm ran all of it. */
  const expectChunksRan = (record: EpisodeRecord): void => {
    expect(record.cycles.length).toBeGreaterThan(0);
    for (const c of record.cycles) {
      expect(c.action?.ok, JSON.stringify(c.action?.attempts)).toBe(true);
      expect(c.chunk).toEqual(CHUNK);
      expect(c.executed).toBe(CHUNK.length);
      expect(c.executeError).toBeNull();
      // Recorded after mapping: the digits the chunk means, not the rare tokens.
      expect(c.action?.attempts.at(-1)?.raw).toContain('0.010');
    }
  };
  /** A copy of the trained adapter with its files changed, for the refusals (in the store: the station reads only there). */
  const adapterCopy = (name: string, change: (path: string) => void): string => {
    const path = join(dir, 'store', 'adapters', name);
    cpSync(fileURLToPath(adapterUri), path, { recursive: true });
    change(path);
    return fileUri(path);
  };

  it('with the local backend (transformers + peft on the GPU worker), the rare tokens it writes become digits and the chunks run', async () => {
    const s = await station();
    const { result, record } = await workers(({ gpu }) =>
      episode({
        stationId: s.stationId,
        policy: { kind: 'model', model: { name: 'vlm2vla-at', backend: 'local', baseModel, adapter: adapterUri }, actionRepresentation: 'action-tokens', taskQueue: gpu },
      }),
    );
    expect(result.subtasks).toEqual(SUBTASKS);
    expect(result.outcome, result.reason).not.toBe('error');
    expectChunksRan(record);
  }, 600_000);

  it('with an OpenAI-compatible server returning the rare tokens as text, the chunks parse and run', async () => {
    const atChunk = digitsToActionTokens(formatActionChunk(CHUNK), mapping);
    expect(atChunk).not.toMatch(/\d/);
    const vla = await createOpenAIServer({
      models: ['vlm2vla-at'],
      answer: (req) => (req.promptText.includes('list every high-level subtask') ? formatSubtaskList(SUBTASKS) : req.promptText.includes('Output only the action chunk') ? atChunk : PLAN),
    });
    try {
      const s = await station();
      const { result, record } = await episode({
        stationId: s.stationId,
        policy: { kind: 'model', model: { name: 'vlm2vla-at', backend: 'openai', baseUrl: vla.baseUrl, model: 'vlm2vla-at' }, actionRepresentation: 'action-tokens', adapterUri },
      });
      expect(result.outcome, result.reason).not.toBe('error');
      expect(result.formatFailures).toBe(0);
      expectChunksRan(record);
      expect(vla.requests.filter((r) => r.promptText.includes('Output only the action chunk'))).toHaveLength(record.cycles.length);
    } finally {
      await vla.close();
    }
  }, 300_000);

  it('a missing or misfitting mapping ends the episode with an error naming the adapter, before any chunk runs', async () => {
    const vla = await createOpenAIServer({ models: ['vlm2vla-at'], answer: () => formatSubtaskList(SUBTASKS) });
    try {
      const s = await station();
      const missing = adapterCopy('no-mapping', (p) => rmSync(join(p, 'action_tokens.json')));
      const openai = { name: 'vlm2vla-at', backend: 'openai', baseUrl: vla.baseUrl, model: 'vlm2vla-at' } as const;
      const a = await episode({ stationId: s.stationId, policy: { kind: 'model', model: openai, actionRepresentation: 'action-tokens', adapterUri: missing } });
      expect(a.result.outcome).toBe('error');
      expect(a.result.reason).toContain(`action-tokens adapter ${missing}: no action_tokens.json`);
      expect(a.record.cycles).toHaveLength(0);
      // The model was never asked: the mapping is checked first.
      expect(vla.requests).toHaveLength(0);

      // A mapping whose ids are other tokens of the base model's tokenizer (as if made for another base).
      const shifted = adapterCopy('other-tokenizer', (p) => {
        const raw = JSON.parse(readFileSync(join(p, 'action_tokens.json'), 'utf8')) as { digits: Record<string, { id: number }> };
        for (const entry of Object.values(raw.digits)) entry.id += 1;
        writeFileSync(join(p, 'action_tokens.json'), JSON.stringify(raw));
      });
      const b = await workers(({ gpu }) =>
        episode({ stationId: s.stationId, policy: { kind: 'model', model: { name: 'vlm2vla-at', backend: 'local', baseModel, adapter: shifted }, actionRepresentation: 'action-tokens', taskQueue: gpu } }),
      );
      expect(b.result.outcome).toBe('error');
      expect(b.result.reason).toMatch(new RegExp(`action-tokens adapter ${shifted}: action_tokens.json does not fit the base model's tokenizer`));
      expect(b.record.cycles).toHaveLength(0);
    } finally {
      await vla.close();
    }
  }, 300_000);
});
