/**
 * A readable rendering of one D_lan record, for a researcher spot-checking labels: a self-contained
 * HTML page (key frames inlined, nothing fetched from elsewhere, so it can be mailed or attached to
 * an issue) and a PNG contact sheet of the same steps for a quick look in any image viewer.
 */
import sharp from 'sharp';
import { DLanRecord, type ActionChunk, type DLanStep, type Direction } from '../../data-schemas/d-lan';
import { joinUri } from '../../data-schemas/uri';
import { fixed, formatAction, formatActionChunk, formatGripperValue } from '../../data-schemas/prompts';
import { getJson, ObjectNotFoundError } from '../store';
import type { ObjectStore } from '../store/types';
import { escapeMarkup, htmlPage, svgDocument } from '../report/html';
import { axisDirection } from './auxiliary';

export interface SpotCheck {
  html: string;
  png: Buffer;
}

/** No record at the URI; the CLI catches it to list which trajectories the output does hold. */
export class SpotCheckRecordMissingError extends Error {
  override name = 'SpotCheckRecordMissingError';
  constructor(
    readonly uri: string,
    options?: { cause?: unknown },
  ) {
    super(`no D_lan record at ${uri}`, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Text

export { formatActionChunk };

const gripperWord = (g: number): string => (g === 1 ? 'open' : g === 0 ? 'closed' : `at ${formatGripperValue(g)}`);

export interface ChunkSummary {
  /** Summed displacement per axis in cm (Bridge axes: +x forward, +y left, +z up). */
  totalCm: [number, number, number];
  /** Gripper state before the chunk's first action. */
  gripperBefore: number;
  /** Each change of the gripper, at a 1-based action number. */
  gripperChanges: { action: number; to: number }[];
  actions: number;
}

/**
 * Totals and gripper changes of one chunk. `previousGripper` (the last command of the step before)
 * makes a transition on the chunk's first action visible, which is where the aggregation puts it.
 */
export function summarizeChunk(chunk: ActionChunk, previousGripper?: number): ChunkSummary {
  const totalCm: [number, number, number] = [0, 0, 0];
  for (const [dx, dy, dz] of chunk) {
    totalCm[0] += dx * 100;
    totalCm[1] += dy * 100;
    totalCm[2] += dz * 100;
  }
  const gripperBefore = previousGripper ?? chunk[0]![3];
  let state = gripperBefore;
  const gripperChanges: ChunkSummary['gripperChanges'] = [];
  chunk.forEach(([, , , g], i) => {
    if (g === state) return;
    gripperChanges.push({ action: i + 1, to: g });
    state = g;
  });
  return { totalCm, gripperBefore, gripperChanges, actions: chunk.length };
}

const signedCm = (v: number): string => `${v >= 0.05 ? '+' : ''}${fixed(v, 1)}`;

/** "dx -6.7 cm (backward), dy +10.5 cm (left), dz -8.1 cm (down)"; no direction word for ~0. */
export function formatMotion(s: ChunkSummary): string {
  return ([0, 1, 2] as const)
    .map((axis) => {
      const v = s.totalCm[axis];
      const word = Math.abs(v) < 0.05 ? '' : ` (${axisDirection(axis, v)})`;
      return `${['dx', 'dy', 'dz'][axis]} ${signedCm(v)} cm${word}`;
    })
    .join(', ');
}

/** "gripper open throughout", "gripper open → closed at action 1 of 3" */
export function formatGripper(s: ChunkSummary): string {
  if (s.gripperChanges.length === 0) return `gripper ${gripperWord(s.gripperBefore)} throughout`;
  const changes = s.gripperChanges.map((c) => `${gripperWord(c.to)} at action ${c.action}`).join(' → ');
  return `gripper ${gripperWord(s.gripperBefore)} → ${changes} of ${s.actions}`;
}

interface DirectionRun {
  direction: Direction;
  from: number;
  /** Inclusive. */
  to: number;
}

/** The step's per-source-step direction labels, run-length encoded so ten steps fit on one line. */
function directionRuns(record: DLanRecord, step: DLanStep): DirectionRun[] {
  const [a, b] = step.sourceSteps;
  const runs: DirectionRun[] = [];
  for (const { sourceStep, direction } of [...record.auxiliary.directions].sort((x, y) => x.sourceStep - y.sourceStep)) {
    if (sourceStep < a || sourceStep >= b) continue;
    const last = runs[runs.length - 1];
    if (last && last.direction === direction && last.to === sourceStep - 1) last.to = sourceStep;
    else runs.push({ direction, from: sourceStep, to: sourceStep });
  }
  return runs;
}

function stepSummary(record: DLanRecord, index: number): ChunkSummary {
  const previous = record.steps[index - 1]?.actionChunk;
  return summarizeChunk(record.steps[index]!.actionChunk, previous?.[previous.length - 1]?.[3]);
}

const stepRange = ([a, b]: readonly [number, number]): string => (b - a === 1 ? `source step ${a}` : `source steps ${a}–${b - 1}`);

// ---------------------------------------------------------------------------------------------
// Frames

interface Frame {
  uri: string;
  /** Present when the frame could be read and decoded. */
  image?: { bytes: Buffer; mime: string; width: number; height: number };
  /** Why there is no image. */
  problem?: string;
}

const MIME: Record<string, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', gif: 'image/gif' };

/**
 * A missing or undecodable frame becomes a visible placeholder instead of failing the page: the
 * labels are still worth checking, and the placeholder says which file to look for.
 */
async function loadFrame(store: ObjectStore, uri: string): Promise<Frame> {
  let bytes: Buffer;
  try {
    bytes = await store.get(uri);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return { uri, problem: 'frame missing' };
    throw err;
  }
  try {
    const meta = await sharp(bytes).metadata();
    const mime = MIME[meta.format];
    if (mime === undefined) return { uri, problem: `unsupported image format ${meta.format}` };
    return { uri, image: { bytes, mime, width: meta.width, height: meta.height } };
  } catch {
    return { uri, problem: 'frame not decodable' };
  }
}

// ---------------------------------------------------------------------------------------------
// HTML

/** Display width of key frames; 64 px Bridge frames are scaled up 3x. */
const HTML_FRAME_PX = 192;

const CSS = `
:root { color-scheme: light; --ink: #1d2329; --muted: #5f6b76; --line: #dde2e7; --bg: #f4f6f8; --card: #fff; --accent: #1f6feb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header, main, footer { max-width: 1080px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; padding-bottom: 12px; }
h1 { margin: 0 0 6px; font-size: 24px; line-height: 1.3; }
.meta { margin: 0; color: var(--muted); font-size: 14px; }
.meta code { color: var(--ink); }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 13px; }
.step { display: grid; grid-template-columns: ${HTML_FRAME_PX}px 1fr; gap: 20px; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px; margin: 14px 0; }
.frame { margin: 0; }
.frame img, .frame .missing { display: block; width: ${HTML_FRAME_PX}px; height: auto; border-radius: 4px; background: #000; }
.frame img.pixelated { image-rendering: pixelated; }
.frame .missing { height: ${HTML_FRAME_PX}px; display: flex; align-items: center; justify-content: center; background: #eceff2; color: #b42318; font-weight: 600; text-align: center; padding: 8px; }
.frame figcaption { margin-top: 6px; color: var(--muted); font-size: 12px; word-break: break-all; }
.head { display: flex; gap: 10px; align-items: baseline; color: var(--muted); font-size: 13px; }
.idx { background: var(--ink); color: #fff; border-radius: 4px; padding: 1px 8px; font-weight: 600; }
.subtask { margin: 6px 0 2px; font-size: 18px; font-weight: 700; }
.plan { margin: 0 0 12px; }
.label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; margin-bottom: 3px; }
.chunk code { display: block; background: #f6f8fa; border: 1px solid var(--line); border-radius: 4px; padding: 8px 10px; line-height: 1.6; }
.chunk .a { white-space: nowrap; }
.sum { margin: 6px 0 12px; font-size: 13px; }
.sum b { font-weight: 600; }
.dirs { display: flex; flex-wrap: wrap; gap: 6px; }
.dir { border: 1px solid #c9d6e8; background: #eef4fc; color: #1b4f8f; border-radius: 999px; padding: 0 9px; font-size: 12px; line-height: 20px; }
.dir.none { border-color: var(--line); background: #f2f3f5; color: var(--muted); }
footer { padding-top: 8px; padding-bottom: 32px; color: var(--muted); font-size: 13px; }
footer h2 { margin: 18px 0 8px; padding-top: 14px; border-top: 1px solid var(--line); font-size: 13px; text-transform: uppercase; letter-spacing: .04em; }
footer dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
footer dt { font-weight: 600; }
footer dd { margin: 0; word-break: break-all; }
@media (max-width: 640px) { .step { grid-template-columns: 1fr; } }
`;

function frameHtml(step: DLanStep, frame: Frame): string {
  const caption = `<figcaption>${escapeMarkup(step.keyFrame)}</figcaption>`;
  if (!frame.image) {
    return `<figure class="frame"><div class="missing">${escapeMarkup(frame.problem ?? 'no frame')}</div>${caption}</figure>`;
  }
  const { bytes, mime, width, height } = frame.image;
  const displayHeight = Math.round((HTML_FRAME_PX * height) / width);
  // Smoothing a 64 px frame scaled 3x blurs exactly the details a spot check is for.
  const cls = width < HTML_FRAME_PX ? ' class="pixelated"' : '';
  const alt = `key frame of step ${step.index}`;
  return `<figure class="frame"><img${cls} src="data:${mime};base64,${bytes.toString('base64')}" width="${HTML_FRAME_PX}" height="${displayHeight}" alt="${escapeMarkup(alt)}">${caption}</figure>`;
}

function stepHtml(record: DLanRecord, step: DLanStep, frame: Frame): string {
  const summary = stepSummary(record, step.index);
  const actions = step.actionChunk.map((a) => `<span class="a">${escapeMarkup(formatAction(a))}</span>`).join(', ');
  const dirs = directionRuns(record, step)
    .map((r) => {
      const where = r.from === r.to ? `source step ${r.from}` : `source steps ${r.from}–${r.to}`;
      const count = r.to - r.from + 1;
      return `<span class="dir${r.direction === 'none' ? ' none' : ''}" title="${where}">${escapeMarkup(r.direction)}${count > 1 ? ` ×${count}` : ''}</span>`;
    })
    .join('');
  const n = step.actionChunk.length;
  return `<article class="step" id="step-${step.index}">
${frameHtml(step, frame)}
<div class="body">
<div class="head"><span class="idx">Step ${step.index}</span><span>${stepRange(step.sourceSteps)}</span></div>
<p class="subtask">${escapeMarkup(step.subtask)}</p>
<p class="plan">${escapeMarkup(step.motionPlan)}</p>
<div class="chunk"><div class="label">Action chunk · ${n} action${n === 1 ? '' : 's'}</div><code>[${actions}]</code></div>
<p class="sum"><b>Total</b> ${escapeMarkup(formatMotion(summary))} · ${escapeMarkup(formatGripper(summary))}</p>
<div class="label">Directions of source steps</div>
<div class="dirs">${dirs || '<span class="dir none">no labels</span>'}</div>
</div>
</article>`;
}

function labelerText(record: DLanRecord): string {
  const l = record.labeler;
  return `${l.name} ${l.version}${l.model !== undefined && !l.version.includes(l.model) ? ` (${l.model})` : ''}`;
}

function renderHtml(record: DLanRecord, recordUri: string, frames: readonly Frame[]): string {
  const p = record.provenance;
  const sourceSteps = record.auxiliary.directions.length;
  const completion = record.auxiliary.subtaskCompletion.map((c) => `${c.fromStep} → ${c.toStep}: ${c.subtask}`).join('; ');
  const rows: [string, string][] = [
    ['Record', recordUri],
    ['Source dataset', p.sourceDataset],
    ['Source record', `${p.sourceRecord} (sha256 ${p.sourceRecordSha256})`],
    ['Labeled at', p.labeledAt],
    ['Labeler', `${record.labeler.name} ${record.labeler.version}${record.labeler.model ? `, model ${record.labeler.model}` : ''}${record.labeler.promptVersion ? `, prompt ${record.labeler.promptVersion}` : ''}`],
    ['Subtask completion', completion || '(none)'],
    ['Format', `D_lan v${record.formatVersion}`],
  ];
  const title = `${record.trajectoryId}: ${record.instruction} (${labelerText(record)})`;
  const body = `<header>
<h1>${escapeMarkup(record.instruction)}</h1>
<p class="meta"><code>${escapeMarkup(record.trajectoryId)}</code> · labeler <b>${escapeMarkup(labelerText(record))}</b> · ${record.steps.length} language step${record.steps.length === 1 ? '' : 's'} over ${sourceSteps} source steps</p>
</header>
<main>
${record.steps.map((s, i) => stepHtml(record, s, frames[i]!)).join('\n')}
</main>
<footer>
<h2>Provenance</h2>
<dl>
${rows.map(([k, v]) => `<dt>${escapeMarkup(k)}</dt><dd>${escapeMarkup(v)}</dd>`).join('\n')}
</dl>
</footer>`;
  return htmlPage({ title, css: CSS, body, responsive: true });
}

// ---------------------------------------------------------------------------------------------
// PNG contact sheet

const SHEET = {
  columns: 4,
  frame: 256,
  pad: 12,
  gap: 12,
  margin: 16,
  header: 76,
  /** Caption, subtask and plan (up to 7 lines together), 2 summary lines, with the gaps between. */
  text: 24 + 7 * 18 + 8 + 2 * 16,
} as const;
const TILE_W = SHEET.frame + 2 * SHEET.pad;
const TILE_H = SHEET.pad + SHEET.frame + 10 + SHEET.text + SHEET.pad;
const FONT = `'DejaVu Sans', 'Liberation Sans', Arial, sans-serif`;

/** Pixel size of the contact sheet of a record with `steps` language steps: 4 tiles per row. */
export function contactSheetSize(steps: number): { width: number; height: number } {
  const rows = Math.max(1, Math.ceil(steps / SHEET.columns));
  return {
    width: 2 * SHEET.margin + SHEET.columns * TILE_W + (SHEET.columns - 1) * SHEET.gap,
    height: 2 * SHEET.margin + SHEET.header + rows * TILE_H + (rows - 1) * SHEET.gap,
  };
}

/**
 * Greedy word wrap by an estimated width: librsvg does not wrap text, and the sheet has no text
 * measurement. `em` is the average glyph width of DejaVu Sans, generous so lines rather end early
 * than run past the tile. Overflowing text ends in an ellipsis.
 */
function wrap(text: string, widthPx: number, fontPx: number, em: number, maxLines: number): string[] {
  const maxChars = Math.max(4, Math.floor(widthPx / (fontPx * em)));
  const lines: string[] = [];
  let line = '';
  for (const raw of text.split(/\s+/).filter(Boolean)) {
    let word = raw;
    while (word.length > maxChars) {
      if (line) lines.push(line);
      lines.push(word.slice(0, maxChars));
      word = word.slice(maxChars);
      line = '';
    }
    if (!line) line = word;
    else if (line.length + 1 + word.length <= maxChars) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line) lines.push(line);
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, maxLines);
  const last = kept[maxLines - 1]!;
  kept[maxLines - 1] = `${last.length >= maxChars ? last.slice(0, maxChars - 1) : last}…`;
  return kept;
}

function textLines(lines: readonly string[], x: number, y: number, lineHeight: number, attrs: string): string {
  return lines.map((l, i) => `<text x="${x}" y="${y + i * lineHeight}" ${attrs}>${escapeMarkup(l)}</text>`).join('');
}

function tileOrigin(i: number): { x: number; y: number } {
  const col = i % SHEET.columns;
  const row = Math.floor(i / SHEET.columns);
  return { x: SHEET.margin + col * (TILE_W + SHEET.gap), y: SHEET.margin + SHEET.header + row * (TILE_H + SHEET.gap) };
}

function sheetSvg(record: DLanRecord, frames: readonly Frame[], width: number, height: number): string {
  const textW = width - 2 * SHEET.margin;
  const parts: string[] = [`<rect width="${width}" height="${height}" fill="#f4f6f8"/>`];
  parts.push(textLines(wrap(record.instruction, textW, 20, 0.66, 1), SHEET.margin, SHEET.margin + 22, 26, `font-size="20" font-weight="bold" fill="#1d2329"`));
  const meta = `${record.trajectoryId} · labeler ${labelerText(record)} · ${record.steps.length} language steps over ${record.auxiliary.directions.length} source steps`;
  parts.push(textLines(wrap(meta, textW, 13, 0.6, 1), SHEET.margin, SHEET.margin + 46, 18, `font-size="13" fill="#5f6b76"`));
  parts.push(textLines(wrap(record.provenance.sourceDataset, textW, 12, 0.6, 1), SHEET.margin, SHEET.margin + 64, 16, `font-size="12" fill="#8a949e"`));

  const innerW = TILE_W - 2 * SHEET.pad;
  record.steps.forEach((step, i) => {
    const { x, y } = tileOrigin(i);
    const tx = x + SHEET.pad;
    parts.push(`<rect x="${x + 0.5}" y="${y + 0.5}" width="${TILE_W - 1}" height="${TILE_H - 1}" rx="6" fill="#ffffff" stroke="#dde2e7"/>`);
    const frame = frames[i]!;
    if (!frame.image) {
      const fy = y + SHEET.pad;
      parts.push(`<rect x="${tx}" y="${fy}" width="${SHEET.frame}" height="${SHEET.frame}" fill="#eceff2"/>`);
      parts.push(textLines([frame.problem ?? 'no frame'], tx + SHEET.frame / 2, fy + SHEET.frame / 2, 16, `font-size="14" font-weight="bold" fill="#b42318" text-anchor="middle"`));
    }
    let ty = y + SHEET.pad + SHEET.frame + 10 + 14;
    parts.push(textLines([`Step ${step.index} · ${stepRange(step.sourceSteps)}`], tx, ty, 0, `font-size="12" fill="#5f6b76"`));
    ty += 24;
    const subtask = wrap(step.subtask, innerW, 15, 0.62, 2);
    parts.push(textLines(subtask, tx, ty, 20, `font-size="15" font-weight="bold" fill="#1d2329"`));
    ty += (subtask.length - 1) * 20 + 22;
    // The plan takes whatever the subtask left, so the summary sits at the same height in every tile.
    const summaryTop = y + TILE_H - SHEET.pad - 16 - 4;
    const plan = wrap(step.motionPlan, innerW, 13, 0.58, Math.floor((summaryTop - 14 - ty) / 17) + 1);
    parts.push(textLines(plan, tx, ty, 17, `font-size="13" fill="#1d2329"`));
    const summary = stepSummary(record, i);
    const t = summary.totalCm;
    const sum = [`total dx ${signedCm(t[0])} · dy ${signedCm(t[1])} · dz ${signedCm(t[2])} cm`, ...wrap(formatGripper(summary), innerW, 11, 0.56, 1)];
    parts.push(textLines(sum, tx, summaryTop, 16, `font-size="11" fill="#1b4f8f"`));
  });
  return svgDocument({ width, height, fontFamily: FONT, content: parts.join('') });
}

async function renderPng(record: DLanRecord, frames: readonly Frame[]): Promise<Buffer> {
  const { width, height } = contactSheetSize(record.steps.length);
  const tiles = await Promise.all(
    frames.map(async (frame, i) => {
      if (!frame.image) return undefined;
      // Nearest-neighbour when scaling up keeps small Bridge frames crisp instead of smeared.
      const kernel = frame.image.width < SHEET.frame ? sharp.kernel.nearest : sharp.kernel.lanczos3;
      const input = await sharp(frame.image.bytes)
        .resize(SHEET.frame, SHEET.frame, { fit: 'contain', background: '#000000', kernel })
        .png()
        .toBuffer();
      const { x, y } = tileOrigin(i);
      return { input, left: x + SHEET.pad, top: y + SHEET.pad };
    }),
  );
  return sharp(Buffer.from(sheetSvg(record, frames, width, height)))
    .composite(tiles.filter((t) => t !== undefined))
    .png()
    .toBuffer();
}

// ---------------------------------------------------------------------------------------------

/**
 * Renders the D_lan record at `recordUri` with its key frames, read from the record's source
 * dataset (`provenance.sourceDataset` + each step's `keyFrame`).
 * @throws SpotCheckRecordMissingError naming the URI when there is no record there
 * @throws InvalidObjectError naming the URI and fields when it is not a valid D_lan record
 */
export async function renderSpotCheck(store: ObjectStore, recordUri: string): Promise<SpotCheck> {
  let record: DLanRecord;
  try {
    record = await getJson(store, recordUri, DLanRecord);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new SpotCheckRecordMissingError(recordUri, { cause: err });
    throw err;
  }
  const frames = await Promise.all(record.steps.map((s) => loadFrame(store, joinUri(record.provenance.sourceDataset, s.keyFrame))));
  return { html: renderHtml(record, recordUri, frames), png: await renderPng(record, frames) };
}
