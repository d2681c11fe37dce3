import { joinUri } from '../../../data-schemas/uri';
import type { ObservationRef } from '../../../data-schemas/robot';
import type { ObjectStore } from '../../store/types';
import type { Observation } from '../station/types';

/**
 * Frames of an episode, stored in its folder (`frames/<arm step>.jpg`) as they are observed, one
 * per arm step: the same step shows the same arm pose, so a re-observation (a retried activity, a
 * restarted worker) overwrites the frame with an equivalent one. finalizeEpisode copies them into
 * the D_rob dataset; reports link them.
 */
export const STAGED_FRAMES_DIR = 'frames';

export const stagedFrameUri = (outputUri: string, step: number): string => joinUri(outputUri, STAGED_FRAMES_DIR, `${String(step).padStart(5, '0')}.jpg`);

/** Stores the frame and returns what the workflow keeps of the observation. */
export async function stageObservation(store: ObjectStore, outputUri: string, o: Observation): Promise<ObservationRef> {
  const frameUri = stagedFrameUri(outputUri, o.step);
  await store.put(frameUri, o.image, { contentType: o.mimeType });
  return { frameUri, state: [...o.state] as ObservationRef['state'], step: o.step, timestamp: o.timestamp };
}
