/**
 * The project's Python environment as activities receive it: built by infra/python.ts
 * (`ensurePythonEnv`) in the worker's process and injected, so activities never build one.
 */
export interface PythonEnv {
  /** The virtual environment's interpreter. Run modules with `-m`; `PYTHONPATH` points at python/. */
  python: string;
  venvDir: string;
  /** Environment for child processes: the project's python/ folder importable, output unbuffered. */
  env: NodeJS.ProcessEnv;
}
