/** Robot stations: the driver interface, its safety check and the drivers. */
import { StationConfig, type StationConfigInput } from '../../../data-schemas/station';
import { SimStationDriver } from './sim';
import type { StationDriver } from './types';
import { WidowXHttpStation } from './widowx-http';
import { WidowXEnvsStation } from './widowx-envs';
import type { PythonEnv } from '../../runtime/python-env';

export * from './errors';
export * from './safety';
export * from './sim';
export * from './types';
export * from './widowx-http';
export * from './widowx-envs';

/**
 * The driver a station config names. `simStateFile`: where a simulated arm keeps its log, so it
 * outlives its process (SimStationOptions.stateFile). `python`: the project's Python environment, for
 * the widowx-envs driver's child process (started on its first reset).
 */
export function createStationDriver(input: StationConfigInput, options: { simStateFile?: string; python?: () => Promise<PythonEnv> } = {}): StationDriver {
  const config = StationConfig.parse(input);
  switch (config.kind) {
    case 'sim':
      return new SimStationDriver({
        seed: config.seed,
        stepDelayMs: config.stepDelayMs,
        safety: config.safety,
        ...(options.simStateFile !== undefined && { stateFile: options.simStateFile }),
      });
    case 'widowx-http':
      return new WidowXHttpStation({ url: config.url, requestTimeoutMs: config.requestTimeoutMs, actionTimeoutMs: config.actionTimeoutMs, safety: config.safety });
    case 'widowx-envs': {
      const { python } = options;
      if (!python) throw new Error('a widowx-envs station needs the Python environment (createStationDriver option `python`)');
      const { kind: _kind, ...rest } = config;
      return new WidowXEnvsStation({ ...rest, python });
    }
  }
}
