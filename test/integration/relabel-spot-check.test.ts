import { Command } from 'commander';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cleanTrajectory } from '../../activities/relabel/clean';
import { heuristicSegments } from '../../activities/relabel/heuristic';
import { buildDLanRecord } from '../../activities/relabel/record';
import { contactSheetSize, formatActionChunk, renderSpotCheck, summarizeChunk } from '../../activities/relabel/spot-check';
import { escapeMarkup } from '../../activities/report/html';
import { FileStore, getJson, putJson, sha256Hex } from '../../activities/store';
import { registerRelabelShow } from '../../cli/commands/relabel-show';
import { DLanRecord } from '../../data-schemas/d-lan';
import { DRobTrajectory } from '../../data-schemas/d-rob';
import type { DatasetManifest } from '../../data-schemas/manifest';
import { ChunkAggregation, labelerIdentity, RELABEL_RECORDS_DIR } from '../../data-schemas/relabel';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { importBridgeSample, simulateSample } from '../helpers/datasets';

const recordUri = (outUri: string, id: string): string => joinUri(outUri, RELABEL_RECORDS_DIR, `${id}.json`);

/** A relabel output built with the pure modules, as the heuristic workflow would write it. */
async function relabelWithoutTemporal(store: FileStore, datasetUri: string, manifest: DatasetManifest, outUri: string): Promise<DLanRecord[]> {
  const records: DLanRecord[] = [];
  for (const entry of manifest.trajectories) {
    const bytes = await store.get(joinUri(datasetUri, entry.record));
    const trajectory = DRobTrajectory.parse(JSON.parse(bytes.toString('utf8')));
    const cleaned = cleanTrajectory(trajectory);
    const record = buildDLanRecord({
      trajectory,
      cleaned,
      segments: heuristicSegments(cleaned, trajectory.instruction),
      labeler: labelerIdentity({ name: 'heuristic' }),
      sourceDataset: datasetUri,
      sourceRecord: entry.record,
      sourceRecordSha256: sha256Hex(bytes),
      labeledAt: '2025-01-01T00:00:00.000Z',
      aggregation: ChunkAggregation.parse({}),
    });
    await putJson(store, recordUri(outUri, record.trajectoryId), record);
    records.push(record);
  }
  return records;
}

describe('relabel spot check (HTML page and PNG contact sheet of one D_lan record)', () => {
  const store = new FileStore();
  let dir: string;
  let bridgeUri: string;
  let outUri: string;
  let records: DLanRecord[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vla-spot-check-'));
    bridgeUri = fileUri(join(dir, 'bridge'));
    outUri = joinUri(bridgeUri, 'labels', 'heuristic-h2');
    const manifest = await importBridgeSample(store, bridgeUri, 2);
    records = await relabelWithoutTemporal(store, bridgeUri, manifest, outUri);
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('renders every step of a Bridge trajectory: title, escaped labels, inlined key frames, chunks, provenance', async () => {
    expect(records).toHaveLength(2);
    for (const record of records) {
      const { html, png } = await renderSpotCheck(store, recordUri(outUri, record.trajectoryId));

      const title = /<title>([^<]*)<\/title>/.exec(html)?.[1] ?? '';
      expect(title).toContain(record.trajectoryId);
      expect(title).toContain(escapeMarkup(record.instruction));
      expect(title).toContain('heuristic h2');
      for (const step of record.steps) {
        expect(html).toContain(escapeMarkup(step.subtask));
        expect(html).toContain(escapeMarkup(step.motionPlan));
        expect(html).toContain(escapeMarkup(step.keyFrame));
      }
      const images = [...html.matchAll(/<img\b[^>]*\bsrc="([^"]*)"/g)].map((m) => m[1] ?? '');
      expect(images).toHaveLength(record.steps.length);
      for (const src of images) expect(src).toMatch(/^data:image\/jpeg;base64,[A-Za-z0-9+/]+=*$/);
      // The first key frame is the source's frame, byte for byte.
      const firstFrame = await store.get(joinUri(bridgeUri, record.steps[0]!.keyFrame));
      expect(images[0]).toBe(`data:image/jpeg;base64,${firstFrame.toString('base64')}`);
      // Self-contained: nothing is fetched from anywhere else.
      expect(html).not.toMatch(/\b(?:src|href)="(?!data:)/);
      expect(html).not.toMatch(/url\(|@import/);
      // 64 px Bridge frames are scaled up without smoothing.
      expect(html).toContain('image-rendering: pixelated');
      expect(html).toContain(record.provenance.sourceRecordSha256);

      const meta = await sharp(png).metadata();
      expect(meta.format).toBe('png');
      expect({ width: meta.width, height: meta.height }).toEqual(contactSheetSize(record.steps.length));
    }
  });

  it('writes action chunks as text in metres with a per-axis summary in cm', () => {
    const chunk: DLanRecord['steps'][number]['actionChunk'] = [
      [0.0123, -0.0031, -0.00001, 1],
      [0.02, 0.004, -0.05, 0],
    ];
    expect(formatActionChunk(chunk)).toBe('[[0.012, -0.003, 0.000, 1], [0.020, 0.004, -0.050, 0]]');
    const summary = summarizeChunk(chunk, 1);
    expect(summary.totalCm.map((v) => Math.round(v * 100) / 100)).toEqual([3.23, 0.09, -5]);
    expect(summary.gripperChanges).toEqual([{ action: 2, to: 0 }]);
  });

  it('escapes markup in labels instead of running it', async () => {
    const evil = structuredClone(records[0]!);
    evil.trajectoryId = 'evil-record';
    evil.instruction = 'put the <b>carrot</b> on the plate & "leave"';
    evil.steps[0]!.subtask = '<script>alert("x")</script> grasp';
    evil.steps[0]!.motionPlan = `Move <img src=x onerror=alert(1)> forward, 'then' stop.`;
    const uri = recordUri(outUri, evil.trajectoryId);
    await putJson(store, uri, evil);

    const { html, png } = await renderSpotCheck(store, uri);
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<b>carrot');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; grasp');
    expect(html).toContain('Move &lt;img src=x onerror=alert(1)&gt; forward, &#39;then&#39; stop.');
    expect(html).toContain('put the &lt;b&gt;carrot&lt;/b&gt; on the plate &amp; &quot;leave&quot;');
    // The same text goes through the contact sheet's SVG, where a stray "<" would break it.
    expect((await sharp(png).metadata()).width).toBe(contactSheetSize(evil.steps.length).width);
  });

  it('shows a missing key frame as a placeholder that names it', async () => {
    const moved = structuredClone(records[1]!);
    moved.trajectoryId = 'moved-frames';
    moved.provenance.sourceDataset = fileUri(join(dir, 'moved-away'));
    const uri = recordUri(outUri, moved.trajectoryId);
    await putJson(store, uri, moved);
    const { html, png } = await renderSpotCheck(store, uri);
    expect(html).toContain('frame missing');
    expect(html).not.toContain('<img');
    expect((await sharp(png).metadata()).height).toBe(contactSheetSize(moved.steps.length).height);
  });

  it('fails on a missing record with an error naming its URI', async () => {
    const uri = recordUri(outUri, 'no-such-trajectory');
    await expect(renderSpotCheck(store, uri)).rejects.toThrow(`no D_lan record at ${uri}`);
  });

  it('vla relabel show writes the page and the sheet, and names the URI and existing ids when the record is missing', async () => {
    const program = new Command('vla').exitOverride();
    registerRelabelShow(program.command('relabel'));
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const id = records[0]!.trajectoryId;
      const htmlFile = join(dir, 'out', `${id}.html`);
      const pngFile = join(dir, 'out', `${id}.png`);
      await program.parseAsync(['relabel', 'show', join(dir, 'bridge', 'labels', 'heuristic-h2'), id, '--out', htmlFile, '--png', pngFile], { from: 'user' });
      expect(readFileSync(htmlFile, 'utf8')).toContain(escapeMarkup(records[0]!.steps[0]!.subtask));
      expect((await sharp(readFileSync(pngFile)).metadata()).format).toBe('png');
      expect(log.mock.calls.map((c) => String(c[0]))).toEqual([`wrote ${htmlFile}`, `wrote ${pngFile}`]);

      const missing = recordUri(outUri, 'bridge-99999-0000000000');
      const failed = program.parseAsync(['relabel', 'show', outUri, 'bridge-99999-0000000000'], { from: 'user' });
      await expect(failed).rejects.toThrow(missing);
      await expect(failed).rejects.toThrow(records[0]!.trajectoryId);
    } finally {
      log.mockRestore();
    }
  });

  it('renders a simulated full-length trajectory with many steps', async () => {
    const simUri = fileUri(join(dir, 'sim'));
    const simOut = joinUri(simUri, 'labels');
    const manifest = await simulateSample(store, simUri, ['put the carrot on the plate'], 1, 0);
    const [record] = await relabelWithoutTemporal(store, simUri, manifest, simOut);
    expect(record!.steps.length).toBeGreaterThan(4);
    const { html, png } = await renderSpotCheck(store, recordUri(simOut, record!.trajectoryId));
    expect([...html.matchAll(/<img\b/g)]).toHaveLength(record!.steps.length);
    // 256 px simulator frames are scaled down, which smoothing does well.
    expect(html).not.toContain('class="pixelated"');
    const meta = await sharp(png).metadata();
    expect({ width: meta.width, height: meta.height }).toEqual(contactSheetSize(record!.steps.length));
    expect(await getJson(store, recordUri(simOut, record!.trajectoryId), DLanRecord)).toEqual(record);
  });
});
