/** Descriptive statistics shared by the pipelines' reports (campaign latencies, VQA bootstrap intervals). Pure. */

/**
 * The q-quantile of `values` by linear interpolation between the closest ranks (Hyndman & Fan type
 * 7, numpy's and R's default): h = (n - 1) q, then sorted[floor h] + (h - floor h) (sorted[floor h + 1] - sorted[floor h]).
 * The median is the 0.5-quantile (the mean of the middle two for even n). Empty input: NaN.
 */
export function quantile(values: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`q must be in [0, 1], got ${q}`);
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const below = sorted[lo]!;
  const above = sorted[Math.min(lo + 1, sorted.length - 1)]!;
  return below + (h - lo) * (above - below);
}
