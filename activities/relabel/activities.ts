import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import { DRobTrajectory, type Camera } from '../../data-schemas/d-rob';
import { DLanRecord } from '../../data-schemas/d-lan';
import { DatasetManifest, MANIFEST_FILE, MANIFEST_FORMAT_VERSION } from '../../data-schemas/manifest';
import {
  QuarantineRecord,
  RELABEL_QUARANTINE_DIR,
  RELABEL_RECORDS_DIR,
  RELABEL_REPORT_FILE,
  ZERO_USAGE,
  labelerIdentity,
  type LabelOutcome,
  type RelabelReport,
  GEMINI_UNREACHABLE_ATTEMPTS,
  RelabelFailure,
  RelabelCpuActivities,
  RelabelGeminiActivities,
} from '../../data-schemas/relabel';
import { joinUri, relativeTo } from '../../data-schemas/uri';
import { readManifest, trajectoryRecordPath } from '../data/dataset-writer';
import { DatasetInvalidError } from '../data/errors';
import { forEachConcurrent } from '../data/pool';
import { classified } from '../failures';
import { implement } from '../../data-schemas/activity-contract';
import { countGeminiUsage, countTrajectoryLabelled, countTrajectoryQuarantined } from '../../data-schemas/metrics';
import { getJson, InvalidObjectError, parseStoredJson, putJson, sha256Hex } from '../store';
import type { ObjectStore } from '../store/types';
import { cleanTrajectory } from './clean';
import { GeminiFailure } from '../gemini/errors';
import { createGeminiLabeler, type GeminiLabeler } from './gemini/labeler';
import { heuristicSegments } from './heuristic';
import { buildDLanRecord } from './record';

/**
 * An unreachable endpoint fails the trajectory after GEMINI_UNREACHABLE_ATTEMPTS attempts instead of
 * the retry policy's twelve (about 14 minutes): in an outage every trajectory would otherwise spend
 * that long before the parent's outage breaker hears of it. Other failures pass unchanged.
 */
function boundUnreachable(err: unknown, attempt: number): unknown {
  if (!(err instanceof ApplicationFailure) || err.type !== GeminiFailure.Network || err.nonRetryable || attempt < GEMINI_UNREACHABLE_ATTEMPTS) return err;
  return ApplicationFailure.create({
    type: GeminiFailure.Network,
    nonRetryable: true,
    message: `${err.message} (gave up after ${attempt} attempts; is the Gemini endpoint reachable from the worker?)`,
  });
}

export interface RelabelDeps {
  store: ObjectStore;
  /** From the Gemini worker's environment only; never from workflow input (docs/design.md, "Secrets stay out of histories"). */
  gemini?: { apiKey?: string; baseUrl?: string };
}

/** At most this many key frames go to the model per trajectory. */
const MAX_KEY_FRAMES = 8;

export const relabelRecordUri = (outputUri: string, trajectoryId: string): string => joinUri(outputUri, RELABEL_RECORDS_DIR, `${trajectoryId}.json`);
export const quarantineUri = (outputUri: string, trajectoryId: string): string => joinUri(outputUri, RELABEL_QUARANTINE_DIR, `${trajectoryId}.json`);

async function listUris(store: ObjectStore, prefixUri: string): Promise<string[]> {
  const uris: string[] = [];
  for await (const o of store.list(`${prefixUri}/`)) uris.push(o.uri);
  return uris;
}

function keyFrameCamera(trajectory: DRobTrajectory): Camera {
  return trajectory.cameras.includes('image_0') ? 'image_0' : trajectory.cameras[0]!;
}

export function createRelabelActivities({ store, gemini }: RelabelDeps) {
  // One client per model for the worker's lifetime: connections are reused across calls.
  const geminiLabelers = new Map<string, GeminiLabeler>();
  function geminiLabelerFor(apiKey: string, model: string): GeminiLabeler {
    let labeler = geminiLabelers.get(model);
    if (!labeler) {
      labeler = createGeminiLabeler({ apiKey, model, ...(gemini?.baseUrl !== undefined && { baseUrl: gemini.baseUrl }) });
      geminiLabelers.set(model, labeler);
    }
    return labeler;
  }

  // A 100k-trajectory manifest is tens of MB: read it once per worker, not once per page.
  let manifestCache: { uri: string; etag: string; name: string; ids: string[] } | undefined;
  async function trajectoryIds(datasetUri: string): Promise<{ name: string; ids: string[] }> {
    const manifestUri = joinUri(datasetUri, MANIFEST_FILE);
    const etag = (await store.head(manifestUri))?.etag;
    if (etag !== undefined && manifestCache?.uri === manifestUri && manifestCache.etag === etag) return manifestCache;
    const manifest = await readManifest(store, datasetUri);
    // A D_lan dataset (a relabel's output) has records, not D_rob trajectories: without this check
    // every child would fail on its own and the run would "complete" with all of them failed.
    if (manifest.kind !== 'd_rob') {
      throw new DatasetInvalidError(`${datasetUri} is a ${manifest.kind} dataset; relabelDataset takes a d_rob dataset (an import, a simulation or robot episodes), not a relabel's output`);
    }
    const entry = { uri: manifestUri, etag: etag ?? '', name: manifest.name, ids: manifest.trajectories.map((t) => t.id) };
    if (etag !== undefined) manifestCache = entry;
    return entry;
  }

  /** Whether a trajectory has its record, was quarantined, or still needs labelling. */
  async function trajectoryState(outputUri: string, trajectoryId: string): Promise<'done' | 'quarantined' | 'pending'> {
    if (await store.head(relabelRecordUri(outputUri, trajectoryId))) return 'done';
    if (await store.head(quarantineUri(outputUri, trajectoryId))) return 'quarantined';
    return 'pending';
  }

  async function loadTrajectory(datasetUri: string, trajectoryId: string): Promise<{ trajectory: DRobTrajectory; path: string; sha256: string }> {
    const path = trajectoryRecordPath(trajectoryId);
    const uri = joinUri(datasetUri, path);
    const bytes = await store.get(uri);
    try {
      // The bytes themselves too: their sha256 goes into the D_lan record.
      return { trajectory: parseStoredJson(uri, bytes, DRobTrajectory, 'a D_rob trajectory'), path, sha256: sha256Hex(bytes) };
    } catch (err) {
      // A broken trajectory fails only itself: the run reports it and goes on.
      if (err instanceof InvalidObjectError) throw ApplicationFailure.nonRetryable(err.message, RelabelFailure.InvalidTrajectory);
      throw err;
    }
  }

  const cpu = implement(RelabelCpuActivities, 'cpu', {
    /** One page of trajectory ids in manifest order; the workflow never holds the whole list. */
    listTrajectoryPage: classified(async (input) => {
      const { name, ids } = await trajectoryIds(input.datasetUri);
      return { datasetName: name, total: ids.length, ids: ids.slice(input.offset, input.offset + input.limit) };
    }),

    /** Whether this trajectory already has its record (or was quarantined) for this labeler version. */
    relabelStatus: classified((input) => trajectoryState(input.outputUri, input.trajectoryId)),

    /**
     * Which of a page of trajectories still need labelling (no record, not quarantined): the
     * parent starts no child for the others, so re-running a large relabel is cheap.
     */
    pendingTrajectories: classified(async (input) => {
      const finished = new Set<string>();
      await forEachConcurrent(input.ids, 16, async (id) => {
        if ((await trajectoryState(input.outputUri, id)) !== 'pending') finished.add(id);
      });
      return input.ids.filter((id) => !finished.has(id));
    }),

    /** The embedded default labeler: deterministic rules, no key, no cost. */
    labelHeuristic: classified(async (input): Promise<LabelOutcome> => {
      const { trajectory } = await loadTrajectory(input.datasetUri, input.trajectoryId);
      const segments = heuristicSegments(cleanTrajectory(trajectory), trajectory.instruction);
      return { ok: true, segments, usage: ZERO_USAGE };
    }),

    /**
     * Builds the D_lan record from the labeler's segments and the trajectory's real actions, and
     * writes it create-if-absent: exactly one record per trajectory and labeler version.
     */
    writeRelabelRecord: classified(
      async (input) => {
        const { trajectory, path, sha256 } = await loadTrajectory(input.datasetUri, input.trajectoryId);
        const record = buildDLanRecord({
          trajectory,
          cleaned: cleanTrajectory(trajectory),
          segments: input.segments,
          labeler: labelerIdentity(input.labeler),
          sourceDataset: input.datasetUri,
          sourceRecord: path,
          sourceRecordSha256: sha256,
          labeledAt: new Date().toISOString(),
          aggregation: input.aggregation,
          keyFrameCamera: keyFrameCamera(trajectory),
        });
        const uri = relabelRecordUri(input.outputUri, input.trajectoryId);
        const written = await putJson(store, uri, record, { ifAbsent: true });
        if (written.created) countTrajectoryLabelled(Context.current().metricMeter, input.labeler.name);
        return { created: written.created, recordUri: uri, steps: record.steps.length };
      },
    ),

    /** Sets a trajectory aside with the reason; a quarantined trajectory is never written as done. */
    writeQuarantine: classified(
      async (input) => {
        const record: QuarantineRecord = {
          trajectoryId: input.trajectoryId,
          labeler: labelerIdentity(input.labeler),
          reason: input.reason,
          attempts: input.attempts,
          quarantinedAt: new Date().toISOString(),
        };
        const written = await putJson(store, quarantineUri(input.outputUri, input.trajectoryId), record, { ifAbsent: true });
        if (written.created) countTrajectoryQuarantined(Context.current().metricMeter, input.labeler.name);
      },
    ),

    /**
     * Writes the D_lan manifest (every record with its sha256) and the run report. A re-run
     * rewrites both from what the store holds, so they always describe the records that exist.
     */
    finalizeRelabel: classified(
      async (input) => {
        const entries: { record: DLanRecord; path: string; sha256: string; bytes: number }[] = [];
        await forEachConcurrent(await listUris(store, joinUri(input.outputUri, RELABEL_RECORDS_DIR)), 16, async (uri) => {
          const bytes = await store.get(uri);
          const record = parseStoredJson(uri, bytes, DLanRecord, 'a D_lan record');
          entries.push({ record, path: relativeTo(input.outputUri, uri)!, sha256: sha256Hex(bytes), bytes: bytes.length });
          if (entries.length % 200 === 0) heartbeat(entries.length);
        });
        entries.sort((a, b) => a.path.localeCompare(b.path));
        const quarantined: { trajectoryId: string; reason: string }[] = [];
        await forEachConcurrent(await listUris(store, joinUri(input.outputUri, RELABEL_QUARANTINE_DIR)), 16, async (uri) => {
          const q = await getJson(store, uri, QuarantineRecord);
          quarantined.push({ trajectoryId: q.trajectoryId, reason: q.reason });
        });
        quarantined.sort((a, b) => a.trajectoryId.localeCompare(b.trajectoryId));

        const source = await trajectoryIds(input.datasetUri);
        const identity = labelerIdentity(input.labeler);
        const manifest: DatasetManifest = {
          formatVersion: MANIFEST_FORMAT_VERSION,
          kind: 'd_lan',
          name: `${source.name}.${identity.name}-${identity.version}`.slice(0, 128),
          createdAt: new Date().toISOString(),
          source: { producer: 'vla-relabel', producerVersion: identity.version, inputs: [input.datasetUri] },
          counts: {
            trajectories: entries.length,
            steps: entries.reduce((n, e) => n + e.record.steps.length, 0),
            files: entries.length,
            bytes: entries.reduce((n, e) => n + e.bytes, 0),
          },
          trajectories: entries.map((e) => ({ id: e.record.trajectoryId, record: e.path, instruction: e.record.instruction, steps: e.record.steps.length })),
          files: entries.map((e) => ({ path: e.path, sha256: e.sha256, bytes: e.bytes })),
        };
        const report: RelabelReport = {
          datasetUri: input.datasetUri,
          outputUri: input.outputUri,
          labeler: identity,
          status: input.status,
          counts: input.counts,
          usage: input.usage,
          ...(input.fatalError !== undefined && { fatalError: input.fatalError }),
          quarantined,
          failed: input.failed,
          finishedAt: new Date().toISOString(),
        };
        const reportUri = joinUri(input.outputUri, RELABEL_REPORT_FILE);
        const manifestUri = joinUri(input.outputUri, MANIFEST_FILE);
        await putJson(store, reportUri, report);
        // A re-run that found nothing new keeps the manifest as it was, createdAt included: its
        // sha256 names this D_lan version downstream (shard sets record it).
        const previous = await getJson(store, manifestUri, DatasetManifest).catch(() => undefined);
        if (!previous || JSON.stringify({ ...previous, createdAt: '' }) !== JSON.stringify({ ...manifest, createdAt: '' })) {
          await putJson(store, manifestUri, manifest);
        }
        return { reportUri, manifestUri, quarantined: quarantined.slice(0, 100) };
      },
    ),
  });

  const onGeminiQueue = implement(RelabelGeminiActivities, 'gemini', {
    /** Runs on the Gemini task queue, whose server-side rate limit is the global quota. */
    labelGemini: classified(async (input): Promise<LabelOutcome> => {
      if (!gemini?.apiKey) {
        throw ApplicationFailure.nonRetryable('GEMINI_API_KEY is not set in the environment of the worker serving the Gemini task queue', GeminiFailure.Auth);
      }
      const { trajectory } = await loadTrajectory(input.datasetUri, input.trajectoryId);
      const camera = keyFrameCamera(trajectory);
      const every = Math.max(1, Math.ceil(trajectory.steps.length / MAX_KEY_FRAMES));
      const keySteps = trajectory.steps.filter((s) => s.index % every === 0 && s.frames[camera] !== undefined);
      const keyFrames = await Promise.all(keySteps.map(async (s) => ({ step: s.index, jpeg: await store.get(joinUri(input.datasetUri, s.frames[camera]!)) })));
      const labeler = geminiLabelerFor(gemini.apiKey, input.model);
      try {
        // Cancelling the workflow aborts the HTTP call instead of waiting for the model.
        const outcome = await labeler.label(
          { instruction: trajectory.instruction, cleaned: cleanTrajectory(trajectory), keyFrames, feedback: input.feedback },
          { abortSignal: Context.current().cancellationSignal },
        );
        countGeminiUsage(Context.current().metricMeter, { model: input.model, use: 'relabel' }, outcome.usage);
        return outcome;
      } catch (err) {
        throw boundUnreachable(err, Context.current().info.attempt);
      }
    })
  });
  return { cpu, gemini: onGeminiQueue };
}
