/** Benchmark options: `--name=value` on the command line, else `BENCH_NAME` in the environment. */
export function stringOption(name: string): string | undefined {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  return flag?.slice(name.length + 3) ?? process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
}

/** A positive integer option with its default. */
export function option(name: string, fallback: number): number {
  const raw = stringOption(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer, got "${raw}"`);
  return value;
}
