import { NativeConnection, Runtime, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { join } from 'node:path';
import type { StationConfig } from '../data-schemas/station';
import { TaskQueue } from '../data-schemas/workflows';
import { stationWorkerActivities } from '../activities/robot/episode/station-activities';
import { classifyActivityErrors } from '../activities/failures';
import { WORKFLOWS_PATH } from './cpu';
import { closePolicyModels, type PolicyModelEnv } from '../activities/robot/episode/policy-model';
import { createStationDriver } from '../activities/robot/station';
import type { StationDriver } from '../activities/robot/station/types';
import type { PythonEnv } from '../activities/runtime/python-env';
import type { ObjectStore } from '../activities/store/types';
import { setStationAvailable } from '../data-schemas/metrics';
import { withTracing, type WorkerTracing } from '../infra/telemetry';

export interface StationWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  stationId: string;
  station: StationConfig;
  store: ObjectStore;
  /** The station's own folder (who owns the arm; the simulated arm's log). */
  stateDir: string;
  modelEnv?: PolicyModelEnv;
  /** A prebuilt bundle (tests share one); by default the workflows are bundled at start. */
  workflowBundle?: WorkflowBundleOption;
  /** Tracing interceptors and span sink (infra/telemetry.ts), when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  tracing?: WorkerTracing;
  /** The project's Python environment, built on first use: the widowx-envs driver runs a Python child. */
  python?: () => Promise<PythonEnv>;
}

/** The folder of a station under the project's state directory. */
export const stationStateDir = (stateDir: string, stationId: string): string => join(stateDir, 'stations', stationId);

/**
 * One station's worker: the only poller of `vla-station-<id>`. It runs the station's episodes
 * (workflows) and their station stages as local activities, the chunks as activities one at a
 * time, so one chunk moves the arm at a time. Heartbeats go out every second: an abort reaches a
 * running chunk within about a second.
 */
export async function createStationWorker(options: StationWorkerOptions): Promise<{ worker: Worker; driver: StationDriver }> {
  // The arm's log lets a restarted worker find the simulated arm where the killed one left it.
  const driver = createStationDriver(options.station, { simStateFile: join(options.stateDir, 'sim-arm.jsonl'), ...(options.python && { python: options.python }) });
  // The runtime's meter, not an activity's: one gauge series per station, whatever activity set it.
  const metricMeter = Runtime.instance().metricMeter;
  const worker = await Worker.create(withTracing({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: TaskQueue.station(options.stationId),
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: stationWorkerActivities({
      stationId: options.stationId,
      driver,
      store: options.store,
      stateDir: options.stateDir,
      ...(options.modelEnv && { modelEnv: options.modelEnv }),
      metricMeter,
    }),
    maxConcurrentActivityTaskExecutions: 1,
    // Whatever an activity throws is classified (docs/design.md, "Classify every failure").
    interceptors: { activity: [classifyActivityErrors] },
    maxConcurrentLocalActivityExecutions: 1,
    maxHeartbeatThrottleInterval: '1 second',
    defaultHeartbeatThrottleInterval: '1 second',
  }, options.tracing));
  setStationAvailable(metricMeter, options.stationId, true);
  return { worker, driver };
}

/** Stops the arm and closes what the worker opened. */
export async function closeStation(driver: StationDriver): Promise<void> {
  await driver.safeStop('the station worker is shutting down').catch(() => undefined);
  await driver.close();
  await closePolicyModels();
}
