/**
 * S3Store against a plain @aws-sdk/client-s3 loop making the same calls, both against one
 * versitygw on loopback started here. Prints MB/s, objects/s and the ratio ours/baseline.
 *
 *   npx tsx bench/store.ts [--frames=200] [--frame-kb=64] [--shards=3] [--shard-mb=50] [--rounds=6] [--concurrency=8]
 *
 * Each option can also come from the environment: BENCH_FRAMES, BENCH_FRAME_KB, BENCH_SHARDS,
 * BENCH_SHARD_MB, BENCH_ROUNDS, BENCH_CONCURRENCY.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Store } from '../activities/store';
import { createBucket, startS3Server } from '../infra/s3-server';
import { forEachConcurrent } from '../activities/data/pool';
import { option } from './options';

const MiB = 1024 * 1024;


const cfg = {
  frames: option('frames', 200),
  frameKb: option('frame-kb', 64),
  shards: option('shards', 3),
  shardMb: option('shard-mb', 50),
  rounds: option('rounds', 6),
  concurrency: option('concurrency', 8),
};

/** The operations one side of the comparison offers; both sides get exactly the same workload. */
interface Side {
  name: 'ours' | 'baseline';
  put(key: string, body: Buffer): Promise<void>;
  get(key: string): Promise<Buffer>;
}

type Phase = 'frames put' | 'frames get' | 'shards put' | 'shards get';
const PHASES: Phase[] = ['frames put', 'frames get', 'shards put', 'shards get'];

interface Sample {
  seconds: number;
  /** CPU time of this Node process during the phase: the client-side cost, less noisy than wall time on a shared machine. */
  cpuSeconds: number;
  bytes: number;
  objects: number;
}


async function timed(fn: () => Promise<void>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Workload {
  frames: Buffer[];
  shards: Buffer[];
}

/** One phase for one side; keys are derived from `prefix`, so a get phase reads what the put phase wrote. */
async function runPhase(side: Side, phase: Phase, prefix: string, work: Workload): Promise<Sample> {
  const items = phase.startsWith('frames') ? work.frames : work.shards;
  const keys = items.map((_, i) => (phase.startsWith('frames') ? `${prefix}/frames/${String(i).padStart(6, '0')}.bin` : `${prefix}/shards/shard-${String(i).padStart(5, '0')}.tar`));
  const bytes = items.reduce((n, b) => n + b.length, 0);
  const check = (got: Buffer, want: Buffer, key: string): void => {
    if (got.length !== want.length || got[got.length - 1] !== want[want.length - 1]) throw new Error(`${side.name}: ${key} came back different`);
  };
  const indexes = items.map((_, i) => i);
  // Frames go out in parallel as a relabel activity would; shards one after another, each using
  // multipart's own parallelism.
  const limit = phase.startsWith('frames') ? cfg.concurrency : 1;
  const cpuBefore = process.cpuUsage();
  const seconds = await timed(() =>
    forEachConcurrent(indexes, limit, async (i) => {
      if (phase.endsWith('put')) await side.put(keys[i]!, items[i]!);
      else check(await side.get(keys[i]!), items[i]!, keys[i]!);
    }),
  );
  const cpu = process.cpuUsage(cpuBefore);
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, bytes, objects: items.length };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vla-bench-store-'));
  const server = await startS3Server({ dataDir: join(dir, 'data'), logFile: join(dir, 'versitygw.log') });
  const bucket = 'bench';
  const clients: { destroy(): void }[] = [];
  try {
    await createBucket(server, bucket);
    const credentials = { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };

    const store = new S3Store({ endpoint: server.endpoint, region: server.region, credentials });
    clients.push(store);
    const ours: Side = {
      name: 'ours',
      put: async (key, body) => void (await store.put(`s3://${bucket}/${key}`, body)),
      get: (key) => store.get(`s3://${bucket}/${key}`),
    };

    // The baseline is what one would write by hand with the SDK: same client settings, PutObject
    // up to the same threshold, lib-storage Upload with the same part size above it.
    const client = new S3Client({ endpoint: server.endpoint, region: server.region, credentials, forcePathStyle: true });
    clients.push(client);
    const { multipartThresholdBytes, partSizeBytes, queueSize } = store.options;
    const baseline: Side = {
      name: 'baseline',
      put: async (key, body) => {
        if (body.length <= multipartThresholdBytes) await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
        else await new Upload({ client, params: { Bucket: bucket, Key: key, Body: body }, partSize: partSizeBytes, queueSize }).done();
      },
      get: async (key) => {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        // A view, not Buffer.from(array)'s copy: the comparison should measure the wrapper, not a memcpy.
        const bytes = await out.Body!.transformToByteArray();
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      },
    };

    const frames = Array.from({ length: cfg.frames }, () => randomBytes(cfg.frameKb * 1024));
    const shards = Array.from({ length: cfg.shards }, () => randomBytes(cfg.shardMb * MiB));
    console.log(`workload: ${cfg.frames} x ${cfg.frameKb} KiB frames (concurrency ${cfg.concurrency}), ${cfg.shards} x ${cfg.shardMb} MiB shards (sequential), ${cfg.rounds} rounds of A-B-B-A per phase + 1 warm-up`);
    console.log(`server: versitygw on ${server.endpoint}; parts ${partSizeBytes / MiB} MiB x ${queueSize} in flight above ${multipartThresholdBytes / MiB} MiB\n`);

    // Warm-up: connections, JIT, the server's first directories.
    const warm = { frames: frames.slice(0, 20), shards: shards.slice(0, 1) };
    for (const side of [ours, baseline]) for (const phase of PHASES) await runPhase(side, phase, `warmup/${side.name}`, warm);

    // Each phase runs A B B A, A alternating by round: linear drift in the machine's load and the
    // penalty of going first after the previous phase (GC of its buffers) fall on both sides alike.
    const samples: Record<Side['name'], Record<Phase, Sample>[]> = { ours: [], baseline: [] };
    const work = { frames, shards };
    const add = (a: Sample | undefined, b: Sample): Sample =>
      a ? { seconds: a.seconds + b.seconds, cpuSeconds: a.cpuSeconds + b.cpuSeconds, bytes: a.bytes + b.bytes, objects: a.objects + b.objects } : b;
    for (let round = 0; round < cfg.rounds; round++) {
      const [a, b] = round % 2 === 0 ? [ours, baseline] : [baseline, ours];
      const got: Record<Side['name'], Partial<Record<Phase, Sample>>> = { ours: {}, baseline: {} };
      for (const phase of PHASES) {
        for (const [side, run] of [[a, 0], [b, 0], [b, 1], [a, 1]] as const) {
          got[side.name][phase] = add(got[side.name][phase], await runPhase(side, phase, `r${round}/${side.name}/${run}`, work));
        }
      }
      samples.ours.push(got.ours as Record<Phase, Sample>);
      samples.baseline.push(got.baseline as Record<Phase, Sample>);
    }

    const rows: string[][] = [['phase', 'ours MB/s', 'baseline MB/s', 'ours obj/s', 'baseline obj/s', 'ratio ours/baseline', 'client CPU ratio']];
    const totals = { ours: 0, baseline: 0, oursCpu: 0, baselineCpu: 0 };
    for (const phase of PHASES) {
      const med = (name: Side['name'], field: 'seconds' | 'cpuSeconds'): number => median(samples[name].map((s) => s[phase][field]));
      const { bytes, objects } = samples.ours[0]![phase];
      const o = med('ours', 'seconds');
      const b = med('baseline', 'seconds');
      const oc = med('ours', 'cpuSeconds');
      const bc = med('baseline', 'cpuSeconds');
      totals.ours += o;
      totals.baseline += b;
      totals.oursCpu += oc;
      totals.baselineCpu += bc;
      rows.push([phase, (bytes / MiB / o).toFixed(1), (bytes / MiB / b).toFixed(1), (objects / o).toFixed(1), (objects / b).toFixed(1), (b / o).toFixed(3), (bc / oc).toFixed(3)]);
    }
    rows.push(['all (time-weighted)', '', '', '', '', (totals.baseline / totals.ours).toFixed(3), (totals.baselineCpu / totals.oursCpu).toFixed(3)]);
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    const line = (r: string[]): string => `| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
    console.log(line(rows[0]!));
    console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    for (const r of rows.slice(1)) console.log(line(r));
    console.log('\nMB/s = MiB per second, medians over rounds; ratio = baseline wall time / our wall time (>= 1: ours as fast or faster);');
    console.log('client CPU ratio = baseline / ours CPU time of this process (the wrapper\'s own cost, robust to other load).');
  } finally {
    for (const c of clients) c.destroy();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
