/** Robot stations: the driver interface, its safety check and the two drivers. */
import { StationConfig, type StationConfigInput } from '../../../data-schemas/station';
import { SimStationDriver } from './sim';
import type { StationDriver } from './types';
import { WidowXHttpStation } from './widowx-http';

export * from './errors';
export * from './safety';
export * from './sim';
export * from './types';
export * from './widowx-http';

/**
 * The driver a station config names. `simStateFile`: where a simulated arm keeps its log, so it
 * outlives its process (SimStationOptions.stateFile).
 */
export function createStationDriver(input: StationConfigInput, options: { simStateFile?: string } = {}): StationDriver {
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
  }
}
