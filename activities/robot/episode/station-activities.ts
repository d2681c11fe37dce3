import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { noopMetricMeter, type MetricMeter } from '@temporalio/common';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { implement } from '../../../data-schemas/activity-contract';
import {
  RobotFailure,
  RobotPolicyActivities,
  STATION_OWNER_FILE,
  StationActivities,
  StationOwnerFile,
  type EpisodeRef,
  type ExecuteChunkInput,
  type ExecuteChunkResult,
  type ObservationRef,
} from '../../../data-schemas/robot';
import { fileUri } from '../../../data-schemas/uri';
import { classified } from '../../failures';
import { parseStoredJson } from '../../store';
import { setStationAvailable } from '../../../data-schemas/metrics';
import type { ObjectStore } from '../../store/types';
import { SimStationDriver } from '../station/sim';
import { StationError, type StationErrorCode } from '../station/errors';
import type { StationDriver } from '../station/types';
import { stageObservation } from './frames';
import { createEpisodeActivities } from './episode-activities';
import { runScriptedStage } from './policy';
import { runModelStage, type PolicyModelEnv } from './policy-model';
import { verifyWithOracle } from './verify';

export interface StationActivityDeps {
  stationId: string;
  driver: StationDriver;
  store: ObjectStore;
  /** The station worker's own folder: who owns the arm survives a worker restart. */
  stateDir: string;
  /** For model policies called from the station (OpenAI-compatible servers). */
  modelEnv?: PolicyModelEnv;
  /** Where the station's availability gauge goes (the worker's runtime meter). @default no metrics */
  metricMeter?: MetricMeter;
}

/** Driver failures that mean the arm did not answer (the others are answers: refusals, limits). */
const ARM_UNANSWERED = new Set<StationErrorCode>(['unreachable', 'timeout', 'server_error', 'protocol_error', 'closed']);

export type { EpisodeRef, ExecuteChunkInput, ExecuteChunkResult };

/**
 * The activities of one station's worker (task queue `vla-station-<id>`, one activity at a time).
 * Every call names its episode; the arm belongs to the episode that reset it last, and an
 * activity of any other episode is refused before anything moves.
 */
export function createStationActivities(deps: StationActivityDeps) {
  const { driver, store } = deps;
  const meter = deps.metricMeter ?? noopMetricMeter;
  /** One call to the arm, which sets the availability gauge: 1 when it answered, 0 when it did not. */
  const armCall = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      const result = await call();
      setStationAvailable(meter, deps.stationId, true);
      return result;
    } catch (err) {
      if (err instanceof StationError && ARM_UNANSWERED.has(err.code)) setStationAvailable(meter, deps.stationId, false);
      throw err;
    }
  };
  const ownerFile = join(deps.stateDir, STATION_OWNER_FILE);
  mkdirSync(deps.stateDir, { recursive: true });

  /** Who owns the arm: none without the file; a file that is not an owner record fails naming it (never read as "nobody"). */
  const owner = (): string | undefined => {
    let text: string;
    try {
      text = readFileSync(ownerFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return parseStoredJson(fileUri(ownerFile), text, StationOwnerFile, `the station's arm owner (${STATION_OWNER_FILE})`).episodeId;
  };
  const claim = (episodeId: string): void => {
    const record: StationOwnerFile = { episodeId, since: new Date().toISOString() };
    writeFileSync(`${ownerFile}.tmp`, JSON.stringify(record));
    renameSync(`${ownerFile}.tmp`, ownerFile);
  };
  const checkOwner = (episodeId: string): void => {
    const current = owner();
    if (current !== episodeId) {
      throw new StationError('busy', current === undefined ? `station ${deps.stationId} has no episode: reset it first` : `station ${deps.stationId} belongs to episode ${current}, not ${episodeId}`);
    }
  };
  const release = (episodeId: string): void => {
    if (owner() === episodeId) rmSync(ownerFile, { force: true });
  };
  const sim = (): SimStationDriver => {
    if (!(driver instanceof SimStationDriver)) throw new Error(`station ${deps.stationId} is a real arm (${driver.kind}); only a simulated station knows the true scene`);
    return driver;
  };

  const station = implement(StationActivities, 'station', {
    stationReset: classified(async (input): Promise<ObservationRef> => {
      claim(input.episodeId);
      let o;
      try {
        o = await armCall(() => driver.reset({ instruction: input.instruction, ...(input.scene !== undefined && { scene: input.scene }), ...(input.seed !== undefined && { seed: input.seed }) }));
      } catch (err) {
        // A refused episode (a scene the station cannot set up) never had the arm: nothing to release later.
        if (err instanceof StationError && err.code === 'bad_request') release(input.episodeId);
        throw err;
      }
      return stageObservation(store, input.outputUri, o);
    }),

    stationObserve: classified(async (input): Promise<ObservationRef> => {
      checkOwner(input.episodeId);
      return stageObservation(store, input.outputUri, await armCall(() => driver.observe()));
    }),

    /**
     * Executes one chunk planned at `expectedStep`, heartbeating after every action. A cancelled
     * activity (an abort) stops the arm after the action in progress and reports what ran.
     */
    stationExecute: classified(async (input): Promise<ExecuteChunkResult> => {
      checkOwner(input.episodeId);
      // Outside an activity (the benchmark's direct loop) there is nothing to heartbeat to.
      const ctx = tryContext();
      const controller = new AbortController();
      const onCancel = (): void => controller.abort();
      ctx?.cancellationSignal.addEventListener('abort', onCancel, { once: true });
      const keepAlive = ctx ? setInterval(() => ctx.heartbeat({ phase: 'executing' }), 1_000) : undefined;
      try {
        ctx?.heartbeat({ phase: 'start' });
        const res = await armCall(() => driver.execute(input.chunk, controller.signal, { expectedStep: input.expectedStep }));
        // At most 256 actions a chunk (the protocol's cap): their frames go to the store together.
        const trace = await Promise.all(res.trace.map((o) => stageObservation(store, input.outputUri, o)));
        const after = trace[trace.length - 1]?.step === res.observation.step ? (trace[trace.length - 1] as ObservationRef) : await stageObservation(store, input.outputUri, res.observation);
        if (ctx?.cancellationSignal.aborted) {
          // The workflow no longer waits for this answer; what moved is in the staged frames.
          throw new CancelledFailure(`chunk stopped after ${res.executed} of ${input.chunk.length} actions`);
        }
        return { executed: res.executed, stopped: res.stopped, after, trace };
      } finally {
        clearInterval(keepAlive);
        ctx?.cancellationSignal.removeEventListener('abort', onCancel);
      }
    }),

    stationSafeStop: classified(async (input): Promise<void> => {
      await driver.safeStop(input.reason);
    }),

    /** Lets the arm go: the next episode's reset claims it. */
    stationRelease: classified((input): Promise<void> => {
      release(input.episodeId);
      return Promise.resolve();
    }),

    /** The simulator's judgement of the episode (success, partial credit); null on a real arm. */
    stationEvaluate: classified((input) => {
      if (!(driver instanceof SimStationDriver)) return Promise.resolve(null);
      checkOwner(input.episodeId);
      const task = driver.simTask();
      const outcome = task.evaluate(driver.simHistory());
      return Promise.resolve({ task: task.text, success: outcome.success, score: outcome.score, maxScore: outcome.maxScore, milestones: outcome.milestones.map((m) => ({ name: m.name, achieved: m.achieved })) });
    }),

    /** The simulator oracle: judges the chunk on the true scene. */
    verifyOracle: classified(async (input) => {
      checkOwner(input.episodeId);
      let s: SimStationDriver;
      try {
        s = sim();
      } catch (err) {
        throw ApplicationFailure.nonRetryable((err as Error).message, RobotFailure.VerifierUnavailable);
      }
      return verifyWithOracle(store, input, () => s.simWorld(), () => s.simTask());
    }),
  });

  const policy = implement(RobotPolicyActivities, 'station', {
    /** A policy stage on the station: the scripted policy (ground truth) or an OpenAI-compatible model. */
    policyStage: classified(async (input) => {
      checkOwner(input.episodeId);
      if (input.policy.kind === 'scripted') {
        const s = sim();
        return runScriptedStage(input, () => ({ task: s.simTask(), world: s.simWorld(), subtaskIndex: input.subtaskIndex }));
      }
      return runModelStage(store, input, deps.modelEnv ?? {});
    }),
  });

  return { ...station, ...policy };
}

function tryContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/**
 * Everything one station's worker registers (workers/station.ts): its own activities, the policy
 * stage (scripted and OpenAI-compatible policies), and the episode's records.
 */
export function stationWorkerActivities(deps: StationActivityDeps) {
  return { ...createStationActivities(deps), ...createEpisodeActivities({ store: deps.store }, 'station') };
}
