import type { ObjectStore } from '../activities/store';
import { getJson } from '../activities/store';
import { DLanRecord } from '../data-schemas/d-lan';
import { joinUri } from '../data-schemas/uri';

/** Records under `<outputUri>/records/`, by trajectory id (read from each record). */
export async function recordIds(store: ObjectStore, outputUri: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const o of store.list(`${joinUri(outputUri, 'records')}/`)) ids.push((await getJson(store, o.uri, DLanRecord)).trajectoryId);
  return ids;
}

/** Whether a relabel run did each trajectory exactly once. */
export interface WorkAccount {
  /** Trajectories asked for that have no record. */
  lost: string[];
  /** Records beyond one per trajectory (the same id twice). */
  duplicateRecords: number;
  /** Records of trajectories that were not asked for. */
  unexpected: string[];
  /** Successful model calls beyond one per trajectory (negative: fewer calls than trajectories). */
  extraCalls: number;
}

/**
 * Compares the trajectories asked for with the records found and the successful model calls the
 * fake server answered: a done trajectory needed at least one successful call, so as many calls
 * as trajectories, with every trajectory recorded once, means exactly one call each.
 */
export function accountWork(wanted: readonly string[], recorded: readonly string[], successfulCalls: number): WorkAccount {
  const got = new Set(recorded);
  const asked = new Set(wanted);
  return {
    lost: wanted.filter((id) => !got.has(id)),
    duplicateRecords: recorded.length - got.size,
    unexpected: [...got].filter((id) => !asked.has(id)),
    extraCalls: successfulCalls - wanted.length,
  };
}

export const workIsExact = (a: WorkAccount): boolean => a.lost.length === 0 && a.duplicateRecords === 0 && a.unexpected.length === 0 && a.extraCalls === 0;
