import type { Command, Option } from 'commander';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { relabelInput } from '../../cli/commands/relabel';
import { shardInput } from '../../cli/commands/shard';
import { trainInput } from '../../cli/commands/train';
import { SchemaOption } from '../../cli/options';
import { buildProgram } from '../../cli/program';
import { RelabelDatasetInput } from '../../data-schemas/relabel';
import { ShardDatasetInput, TrainLoraInput, defaultShardOutput } from '../../data-schemas/training';
import { fileUri } from '../../data-schemas/uri';

/**
 * The CLI declares no default of its own for a workflow input field (docs/design.md, "One
 * default, in the schema"): every option that feeds a field is a SchemaOption, whose help,
 * choices and shown default come from the zod field, and an option left out stays out of the
 * input the command starts the workflow with.
 */

interface Found {
  path: string;
  command: Command;
}

function commandsOf(root: Command, prefix: string[] = []): Found[] {
  return root.commands.flatMap((command) => {
    const path = [...prefix, command.name()];
    return [{ path: path.join(' '), command }, ...commandsOf(command, path)];
  });
}

const flagOf = (option: Option): string => option.long ?? option.flags;

/** The commands that start a workflow, and their options that are not input fields. */
const WORKFLOW_COMMANDS: Record<string, string[]> = {
  // Paths or URIs (the schema takes URIs only) without a default value.
  'relabel run': ['--out', '--no-wait'],
  shard: ['--out', '--no-wait'],
  train: ['--out', '--no-wait'],
  // The input is a JSON file, parsed whole by the schema.
  'experiment run': ['--no-wait'],
  // The repeatable --benchmark builds the benchmarks list; --cron and the rest are the Schedule's own settings.
  'schedule nightly': ['--runs', '--out', '--benchmark', '--cron', '--time-zone', '--catchup', '--id'],
};

/** Options with a default of their own, none of them a workflow input field, each with why. */
const CLI_ONLY_DEFAULTS: Record<string, string> = {
  'dev logs --lines': 'lines of a log file to show',
  'worker --rate': "a Gemini worker's rate limit of its queue",
  'worker --concurrency': "a Gemini worker's model calls in flight",
  'worker --id': 'the simulated station a station worker serves',
  'worker --step-delay-ms': "the simulated station's pause per action",
  'schedule nightly --cron': 'Schedule setting (infra/schedules.ts)',
  'schedule nightly --time-zone': 'Schedule setting (infra/schedules.ts)',
  'schedule nightly --catchup': 'Schedule setting (infra/schedules.ts)',
  'schedule nightly --id': 'Schedule id',
  'schedule trigger --id': 'Schedule id',
  'schedule pause --id': 'Schedule id',
  'schedule unpause --id': 'Schedule id',
  'data simulate --tasks': 'the list a repeated option collects into',
  'data simulate --cameras': 'the list a repeated option collects into',
  'data simulate --n': 'episodes per task of the simulator, run in the shell, not a workflow',
  'data simulate --seed': 'seed of the simulator, run in the shell, not a workflow',
};

function findCommand(program: Command, path: string): Command {
  const found = commandsOf(program).find((c) => c.path === path);
  if (!found) throw new Error(`no command "${path}"`);
  return found.command;
}

/** The real command tree, writing its help and errors into `sink` at any width. */
function quietProgram(sink: { out: string; err: string } = { out: '', err: '' }): Command {
  const program = buildProgram();
  for (const { command } of [{ command: program }, ...commandsOf(program)]) {
    command.configureOutput({ writeOut: (text) => (sink.out += text), writeErr: (text) => (sink.err += text), getOutHelpWidth: () => 10_000, getErrHelpWidth: () => 10_000 });
  }
  return program;
}

/** Parses `argv` with the real command tree and returns what the command's action got. */
async function parsedArgs(path: string, argv: string[]): Promise<unknown[]> {
  const program = quietProgram();
  let got: unknown[] = [];
  findCommand(program, path).action((...args: unknown[]) => {
    got = args;
  });
  await program.parseAsync(argv, { from: 'user' });
  return got;
}

/** `vla <argv> --help` as printed, lines unwrapped. */
async function helpOf(argv: string[]): Promise<string> {
  const sink = { out: '', err: '' };
  await expect(quietProgram(sink).parseAsync([...argv, '--help'], { from: 'user' })).rejects.toMatchObject({ code: 'commander.helpDisplayed' });
  return sink.out;
}

describe('CLI options and the workflow input schemas', () => {
  const all = commandsOf(buildProgram()).flatMap(({ path, command }) => command.options.map((option) => ({ path, option })));
  const schemaOptions = all.flatMap(({ path, option }) => (option instanceof SchemaOption ? [{ path, option }] : []));

  it('every option of a workflow-starting command, but the CLI-only ones, is backed by a schema field', () => {
    for (const [path, cliOnly] of Object.entries(WORKFLOW_COMMANDS)) {
      const options = all.filter((o) => o.path === path);
      expect(options.length, path).toBeGreaterThan(0);
      const unbacked = options.filter((o) => !(o.option instanceof SchemaOption)).map((o) => flagOf(o.option));
      expect(unbacked.sort(), path).toEqual([...cliOnly].sort());
    }
  });

  it('no option outside the schema-backed ones carries a default, except the declared CLI-only ones', () => {
    const withDefault = all
      .filter(({ option }) => !(option instanceof SchemaOption) && !option.isBoolean() && option.defaultValue !== undefined)
      .map(({ path, option }) => `${path} ${flagOf(option)}`);
    expect(withDefault.sort()).toEqual(Object.keys(CLI_ONLY_DEFAULTS).sort());
  });

  it('a schema-backed option applies no default, and the default it shows is the schema field\'s', () => {
    expect(schemaOptions.length).toBeGreaterThanOrEqual(24);
    for (const { path, option } of schemaOptions) {
      const where = `${path} ${flagOf(option)}`;
      // Commander applies a defaultValue whether or not the user gives the option.
      expect(option.defaultValue, where).toBeUndefined();
      expect(option.description, where).toContain(option.field.description);
      const schemaDefault = option.field.safeParse(undefined);
      if (!schemaDefault.success || schemaDefault.data === undefined) {
        expect(option.helpDefault, where).toBeUndefined();
        expect(option.description, where).not.toContain('default:');
        continue;
      }
      expect(option.description, where).toContain(`default: ${JSON.stringify(option.helpDefault)}`);
      // The shown default, typed back in, is the schema's default.
      const typed = option.parseArg!(String(option.helpDefault), undefined);
      expect(option.field.parse(option.toFieldValue(typed)), where).toEqual(schemaDefault.data);
    }
  });

  it('--help shows the schema field\'s description, choices and default', async () => {
    const train = await helpOf(['train']);
    expect(train).toMatch(/--lr <rate> +AdamW learning rate \(linear decay\)\. \(default: 0\.00005\)/);
    expect(train).toMatch(/--precision <p> +bf16 on GPUs; fp32 is what a CPU runs\. \(choices: "bf16", "fp16", "fp32", default: "bf16"\)/);
    expect(train).toContain(TrainLoraInput.shape.learningRate.description);
    const relabel = await helpOf(['relabel', 'run']);
    expect(relabel).toMatch(/--labeler <name> +Who labels: .*\(choices: "heuristic", "gemini", default: "heuristic"\)/);
    expect(relabel).toMatch(/--concurrency <n> +Trajectories labelled at once .*\(default: 32\)/);
    const shard = await helpOf(['shard']);
    expect(shard).toMatch(/--target-shard-mb <mb> +.*Given here in MiB\. \(default: 256\)/);
  });

  it('a value the field refuses is refused when the command line is parsed, naming the problem', async () => {
    await expect(parsedArgs('relabel run', ['relabel', 'run', '/d', '--concurrency', '300'])).rejects.toThrow(/--concurrency.*<=256/);
    await expect(parsedArgs('train', ['train', '/s', '--base-model', 'm', '--out', '/o', '--precision', 'fp8'])).rejects.toThrow(/must be one of bf16, fp16, fp32/);
    await expect(parsedArgs('shard', ['shard', '/d', '--target-shard-mb', '0.01'])).rejects.toThrow(/0\.01 MiB is 10486 bytes; value: Too small/);
  });
});

describe('the input a command starts its workflow with', () => {
  // Only named, never created: the commands turn paths into URIs without touching them.
  const dir = join(tmpdir(), 'vla-cli-input');
  const datasetUri = fileUri(dir);

  it('relabel: options left out are left out; the workflow\'s parse applies the schema defaults', async () => {
    const [dataset, opts] = await parsedArgs('relabel run', ['relabel', 'run', dir]);
    const input = relabelInput(dataset as string, opts as Parameters<typeof relabelInput>[1]);
    expect(input).toEqual({ datasetUri });
    const parsed = RelabelDatasetInput.parse(input);
    expect(parsed).toMatchObject({ labeler: { name: 'heuristic' }, maxConcurrent: 32, maxReprompts: 3 });

    const [dataset2, opts2] = await parsedArgs('relabel run', ['relabel', 'run', dir, '--labeler', 'gemini', '--concurrency', '8', '--budget-usd', '2.5']);
    const given = relabelInput(dataset2 as string, opts2 as Parameters<typeof relabelInput>[1]);
    expect(given).toEqual({ datasetUri, labeler: { name: 'gemini' }, maxConcurrent: 8, budget: { usd: 2.5 } });
    expect(RelabelDatasetInput.parse(given).labeler).toEqual({ name: 'gemini', model: 'gemini-2.5-flash' });
  });

  it('shard: only the output root is resolved, from the seed and split the workflow will see', async () => {
    const [dataset, opts] = await parsedArgs('shard', ['shard', dir]);
    expect(shardInput(dataset as string, opts as Parameters<typeof shardInput>[1])).toEqual({ datasetUri, outputUri: defaultShardOutput(datasetUri, 0, 0.05) });

    const [dataset2, opts2] = await parsedArgs('shard', ['shard', dir, '--seed', '3', '--target-shard-mb', '1']);
    const given = shardInput(dataset2 as string, opts2 as Parameters<typeof shardInput>[1]);
    expect(given).toEqual({ datasetUri, seed: 3, targetShardBytes: 2 ** 20, outputUri: defaultShardOutput(datasetUri, 3, 0.05) });
    expect(ShardDatasetInput.parse(given)).toMatchObject({ validationFraction: 0.05, maxConcurrentShards: 4 });
  });

  it('train: the required fields, the terminal\'s progress interval, and what the user gave', async () => {
    const out = join(dir, 'run');
    const [shards, opts] = await parsedArgs('train', ['train', join(dir, 'shards.json'), '--base-model', './tiny', '--out', out]);
    const input = trainInput(shards as string, opts as Parameters<typeof trainInput>[1]);
    expect(input).toEqual({ shardsUri: fileUri(join(dir, 'shards.json')), baseModel: resolve('./tiny'), outputUri: fileUri(out), progressEverySeconds: 2 });
    expect(TrainLoraInput.parse(input)).toMatchObject({ learningRate: 5e-5, lora: { rank: 16, alpha: 32 }, precision: 'bf16', gpus: 1 });

    const [shards2, opts2] = await parsedArgs('train', ['train', 's3://bucket/shards.json', '--base-model', 'org/model', '--out', 's3://bucket/run', '--rank', '8', '--lr', '1e-4']);
    expect(trainInput(shards2 as string, opts2 as Parameters<typeof trainInput>[1])).toEqual({
      shardsUri: 's3://bucket/shards.json',
      baseModel: 'org/model',
      outputUri: 's3://bucket/run',
      learningRate: 1e-4,
      lora: { rank: 8 },
      progressEverySeconds: 2,
    });
  });
});
