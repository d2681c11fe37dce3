/**
 * Shard writing (the writeShard activity's code: read D_lan records and D_rob frames, build the tar,
 * hash it, stream it through S3Store.putStream create-if-absent, write the sidecar) against a raw
 * multipart upload of the same bytes (S3Store.putStream of a buffer of each shard's size), both into
 * one versitygw on loopback started here, at the same number of shards in flight, the same part size
 * and queue size (both sides are S3Stores with the same options). Prints MiB/s and the ratio
 * ours/raw (goal >= 0.8). The verify pass (verifyShards re-reading every shard after a round's
 * writes) is timed apart and reported beside it, with writeShard + verify against the raw upload:
 * the goal is about writing, and the raw side has nothing to verify.
 *
 *   npx tsx bench/shard.ts [--source=sim|bridge] [--episodes=10] [--copies=20] [--shard-mb=16] [--concurrency=4] [--rounds=3]
 *
 * Each option can also come from the environment: BENCH_SOURCE, BENCH_EPISODES, BENCH_COPIES,
 * BENCH_SHARD_MB, BENCH_CONCURRENCY, BENCH_ROUNDS.
 *
 * The source is a simulated dataset (2 tasks x `episodes`, full-length trajectories, 256x256 JPEG
 * frames) or the bundled Bridge sample (25 episodes, small frames), replicated `copies` times
 * (frames copied) on local disk and relabelled with the heuristic labeler by calling the relabel
 * activities' code; shards go to S3. Everything is removed at the end (unless BENCH_KEEP is set,
 * which prints the folder). BENCH_PROFILE=<file.cpuprofile> writes a CPU profile of one extra
 * writeShard pass before the measured rounds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { forEachConcurrent } from '../activities/data/pool';
import { createObjectStore } from '../activities/store';
import { S3Store } from '../activities/store/s3-store';
import { createShardActivities } from '../activities/shard/activities';
import { SHARD_PLAN_FILE, shardPath, type ShardRef } from '../data-schemas/shard';
import { fileUri, joinUri } from '../data-schemas/uri';
import { createBucket, startS3Server } from '../infra/s3-server';
import { importBridgeSample, relabelHeuristicLocally, replicateDataset, simulateSample } from '../test/helpers/datasets';
import { option, stringOption } from './options';

const MiB = 1024 * 1024;
const cfg = {
  copies: option('copies', 20),
  shardMb: option('shard-mb', 16),
  concurrency: option('concurrency', 4),
  rounds: option('rounds', 3),
  /** `sim`: simulated 256x256 JPEG frames (about 10 KB); `bridge`: the bundled Bridge sample's small frames. */
  source: stringOption('source') ?? 'sim',
  /** Simulated episodes per task before replication. */
  episodes: option('episodes', 10),
};
if (cfg.source !== 'sim' && cfg.source !== 'bridge') throw new Error(`--source must be sim or bridge, got "${cfg.source}"`);

const seconds = (fromMs: number): number => (performance.now() - fromMs) / 1000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vla-bench-shard-'));
  const server = await startS3Server({ dataDir: join(dir, 's3'), logFile: join(dir, 'versitygw.log') });
  const s3Options = { endpoint: server.endpoint, region: server.region, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } };
  const store = createObjectStore({ roots: 'unconfined', s3: s3Options });
  const raw = new S3Store(s3Options);
  try {
    await createBucket(server, 'bench');
    const t0 = performance.now();
    const baseUri = fileUri(join(dir, 'src', cfg.source));
    const drobUri = fileUri(join(dir, 'src', `${cfg.source}-x${cfg.copies}`));
    const dlanUri = fileUri(join(dir, 'src', 'labels'));
    const baseManifest = cfg.source === 'sim' ? await simulateSample(store, baseUri, ['put the carrot on the plate', 'pick up the eggplant'], cfg.episodes, 0) : await importBridgeSample(store, baseUri);
    await replicateDataset(store, baseUri, drobUri, cfg.copies);
    await relabelHeuristicLocally(store, drobUri, dlanUri);
    console.log(`source: ${baseManifest.counts.trajectories * cfg.copies} ${cfg.source} trajectories (frames copied) relabelled on local disk in ${seconds(t0).toFixed(1)} s`);

    const shard = createShardActivities({ store, hooks: () => ({ heartbeat: () => undefined }) });
    const planOut = `s3://bench/plan`;
    const tPlan = performance.now();
    const plan = await shard.planShards({ datasetUri: dlanUri, outputUri: planOut, seed: 0, validationFraction: 0.05, targetShardBytes: cfg.shardMb * MiB, directionLabels: true });
    const planSeconds = seconds(tPlan);
    const planBytes = await store.get(joinUri(planOut, SHARD_PLAN_FILE));

    // Warm-up and the shard sizes: one full write (also JIT, connections, the server's directories).
    const warmOut = 's3://bench/warm';
    await store.put(joinUri(warmOut, SHARD_PLAN_FILE), planBytes);
    const sizes = new Map<string, number>();
    await forEachConcurrent(plan.shards, cfg.concurrency, async (ref) => {
      const r = await shard.writeShard({ outputUri: warmOut, ...ref });
      sizes.set(r.path, r.bytes);
    });
    const total = [...sizes.values()].reduce((a, b) => a + b, 0);
    const samples = (await Promise.all(plan.shards.map(async (ref) => JSON.parse((await store.get(joinUri(warmOut, `${shardPath(ref.split, ref.index)}.json`))).toString('utf8')) as { samples: number }))).reduce(
      (n, e) => n + e.samples,
      0,
    );
    const biggest = Math.max(...sizes.values());
    const buffer = Buffer.alloc(biggest, 7);
    console.log(
      `plan: ${plan.shards.length} shards (${plan.trajectories.train} train / ${plan.trajectories.validation} validation trajectories), ${samples} samples, ${(total / MiB).toFixed(1)} MiB; planShards took ${planSeconds.toFixed(1)} s`,
    );
    console.log(`server: versitygw on ${server.endpoint}; ${cfg.concurrency} shards in flight; ${cfg.rounds} rounds of A-B-B-A; ${availableParallelism()} cores\n`);

    const verifyRun = async (out: string): Promise<number> => {
      const t = performance.now();
      const v = await shard.verifyShards({ outputUri: out, shards: plan.shards });
      if (v.verified !== plan.shards.length) throw new Error(`${out}: verified ${v.verified} of ${plan.shards.length} shards`);
      return seconds(t);
    };
    const oursRun = async (out: string): Promise<number> => {
      await store.put(joinUri(out, SHARD_PLAN_FILE), planBytes);
      const t = performance.now();
      await forEachConcurrent(plan.shards, cfg.concurrency, async (ref: ShardRef) => {
        const r = await shard.writeShard({ outputUri: out, ...ref });
        if (!r.written) throw new Error(`${out}: ${r.path} was not written`);
      });
      return seconds(t);
    };
    const rawRun = async (out: string): Promise<number> => {
      const t = performance.now();
      await forEachConcurrent(plan.shards, cfg.concurrency, async (ref: ShardRef) => {
        const path = shardPath(ref.split, ref.index);
        const body = buffer.subarray(0, sizes.get(path));
        const put = await raw.putStream(joinUri(out, path), Readable.from([body], { objectMode: false }), { ifAbsent: true });
        if (!put.created) throw new Error(`${out}: ${path} existed`);
      });
      return seconds(t);
    };

    if (process.env.BENCH_PROFILE) {
      const { Session } = await import('node:inspector/promises');
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
      console.log(`profiled ours: ${(await oursRun('s3://bench/profiled')).toFixed(2)} s`);
      const { profile } = await session.post('Profiler.stop');
      const { writeFileSync } = await import('node:fs');
      writeFileSync(process.env.BENCH_PROFILE, JSON.stringify(profile));
    }

    const ours: number[] = [];
    const base: number[] = [];
    const verifies: number[] = [];
    for (let round = 0; round < cfg.rounds; round++) {
      const order = round % 2 === 0 ? (['ours', 'raw', 'raw', 'ours'] as const) : (['raw', 'ours', 'ours', 'raw'] as const);
      let o = 0;
      let b = 0;
      let v = 0;
      for (const [i, side] of order.entries()) {
        const out = `s3://bench/r${round}-${i}-${side}`;
        if (side === 'ours') {
          o += await oursRun(out);
          // Not part of the writing time: verifyShards is its own activity, run after all writes.
          v += await verifyRun(out);
        } else b += await rawRun(out);
      }
      ours.push(o / 2);
      base.push(b / 2);
      verifies.push(v / 2);
    }
    const o = median(ours);
    const b = median(base);
    const v = median(verifies);
    const ov = median(ours.map((x, i) => x + verifies[i]!));
    const rows = [
      ['side', 'seconds (median)', 'MiB/s', 'shards/s', 'samples/s'],
      ['writeShard (build tar + upload + sidecar)', o.toFixed(2), (total / MiB / o).toFixed(1), (plan.shards.length / o).toFixed(1), (samples / o).toFixed(0)],
      ['raw multipart upload (putStream of a buffer)', b.toFixed(2), (total / MiB / b).toFixed(1), (plan.shards.length / b).toFixed(1), ''],
      ['verifyShards alone (re-read + parse every shard)', v.toFixed(2), (total / MiB / v).toFixed(1), (plan.shards.length / v).toFixed(1), (samples / v).toFixed(0)],
      ['writeShard + verifyShards', ov.toFixed(2), (total / MiB / ov).toFixed(1), (plan.shards.length / ov).toFixed(1), (samples / ov).toFixed(0)],
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    const line = (r: string[]): string => `| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
    console.log(line(rows[0]!));
    console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    for (const r of rows.slice(1)) console.log(line(r));
    console.log(`\nratio writeShard / raw upload throughput = ${(b / o).toFixed(3)} (goal >= 0.8); per-round ours ${ours.map((x) => x.toFixed(2)).join(', ')} s, raw ${base.map((x) => x.toFixed(2)).join(', ')} s`);
    console.log(`ratio (writeShard + verifyShards) / raw upload throughput = ${(b / ov).toFixed(3)} (not the goal's figure); per-round verify ${verifies.map((x) => x.toFixed(2)).join(', ')} s`);
  } finally {
    raw.destroy();
    await server.stop();
    if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true }); else console.log(dir);
  }
}

await main();
