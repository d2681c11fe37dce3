/** Thrown when a benchmark's data is missing or not in a layout the loader knows; names the file. */
export class BenchmarkLayoutError extends Error {
  override name = 'BenchmarkLayoutError';
}
