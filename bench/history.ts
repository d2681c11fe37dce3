/** Reading times and ids out of workflow histories (protobuf timestamps and Long ids). */
export interface Timestamp {
  seconds?: { toNumber(): number } | number | null;
  nanos?: number | null;
}

/** A history timestamp in milliseconds since the epoch (0 when absent). */
export const tsMs = (ts: Timestamp | null | undefined): number => {
  const s = ts?.seconds;
  return (s == null ? 0 : typeof s === 'number' ? s : s.toNumber()) * 1000 + (ts?.nanos ?? 0) / 1e6;
};

/** An event id as a number (-1 when absent). */
export const idOf = (id: { toNumber(): number } | number | null | undefined): number => (id == null ? -1 : typeof id === 'number' ? id : id.toNumber());
