import { InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { describeZodIssues } from '../data-schemas/issues';

/** Commander argument parsers for options that are not workflow input fields (those are SchemaOptions, below). */
export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

export function positiveInt(value: string): number {
  const n = nonNegativeInt(value);
  if (n === 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

export interface SchemaOptionSettings {
  /** Turns the typed text into what the field takes before the field checks it (a local model path made absolute). */
  coerce?: (value: string) => unknown;
  /** The option takes the field in a larger unit: field value = option value x factor (MiB for a byte count). */
  unit?: { name: string; factor: number; fieldUnit: string };
}

/** The field without its `.default()`, `.prefault()` and `.optional()` wrappers: the type the option's text becomes. */
function innerType(field: z.ZodType): z.ZodType {
  let inner: z.ZodType = field;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodPrefault || inner instanceof z.ZodOptional) inner = inner.unwrap() as z.ZodType;
  return inner;
}

/** The tag values of a tagged union (`heuristic`, `gemini`): the option names the variant. */
function unionTags(union: z.ZodDiscriminatedUnion): { tag: string; values: string[] } {
  const tag = union.def.discriminator;
  const values = union.options.flatMap((variant) => {
    const literal: unknown = variant instanceof z.ZodObject ? variant.shape[tag] : undefined;
    return literal instanceof z.ZodLiteral ? [...literal.values].map(String) : [];
  });
  return { tag, values };
}

/**
 * An option backed by one field of a workflow input schema (docs/design.md, "One default, in the
 * schema"): its help text is the field's `.describe()`, its choices the field's enum or union
 * tags, its parsing the field's type and checks, and the default `--help` shows is the field's.
 * Commander gets no default: an option the user leaves out stays out of the input, and the
 * workflow's parse applies the schema's default.
 */
export class SchemaOption extends Option {
  /** The value `--help` shows as the default, in the option's own unit; undefined when the field has none. */
  readonly helpDefault: unknown;
  readonly allowed: readonly string[] | undefined;

  constructor(
    flags: string,
    readonly field: z.ZodType,
    private readonly settings: SchemaOptionSettings = {},
  ) {
    const description = field.description;
    if (description === undefined) throw new Error(`${flags}: its schema field has no .describe() text to show in --help`);
    super(flags, description);
    const inner = innerType(field);
    const tags = inner instanceof z.ZodDiscriminatedUnion ? unionTags(inner) : undefined;
    this.allowed = inner instanceof z.ZodEnum ? inner.options.map(String) : tags?.values;
    const fieldDefault = field.safeParse(undefined);
    const schemaDefault: unknown = fieldDefault.success ? fieldDefault.data : undefined;
    this.helpDefault =
      schemaDefault === undefined ? undefined
      : tags !== undefined ? (schemaDefault as Record<string, unknown>)[tags.tag]
      : settings.unit !== undefined ? (schemaDefault as number) / settings.unit.factor
      : schemaDefault;

    // Commander would show a default only by applying it; the help line is written here instead, in its format.
    const extra = [
      ...(this.allowed !== undefined ? [`choices: ${this.allowed.map((c) => JSON.stringify(c)).join(', ')}`] : []),
      ...(this.helpDefault !== undefined ? [`default: ${JSON.stringify(this.helpDefault)}`] : []),
    ];
    const unitNote = settings.unit !== undefined ? ` Given here in ${settings.unit.name}.` : '';
    this.description = `${description}${unitNote}${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`;
    this.argParser((value: string) => this.parseText(value, inner));
  }

  /** What the field gets for the option's value (the union variant, the unit converted): the test compares defaults through it. */
  toFieldValue(value: unknown): unknown {
    const inner = innerType(this.field);
    if (inner instanceof z.ZodDiscriminatedUnion) return { [unionTags(inner).tag]: value };
    if (this.settings.unit !== undefined && typeof value === 'number') return value * this.settings.unit.factor;
    return value;
  }

  private parseText(value: string, inner: z.ZodType): unknown {
    if (this.allowed !== undefined) {
      if (!this.allowed.includes(value)) throw new InvalidArgumentError(`must be one of ${this.allowed.join(', ')}`);
      return value;
    }
    let typed: unknown = this.settings.coerce !== undefined ? this.settings.coerce(value) : value;
    if (this.settings.coerce === undefined && inner instanceof z.ZodNumber) {
      typed = Number(value);
      if (value.trim() === '' || !Number.isFinite(typed)) throw new InvalidArgumentError('must be a number');
    }
    const unit = this.settings.unit;
    const checked = unit !== undefined && typeof typed === 'number' ? Math.round(typed * unit.factor) : typed;
    const parsed = inner.safeParse(checked);
    if (!parsed.success) {
      const problem = describeZodIssues(parsed.error, { root: 'value' });
      throw new InvalidArgumentError(unit !== undefined ? `${value} ${unit.name} is ${String(checked)} ${unit.fieldUnit}; ${problem}` : problem);
    }
    // The option carries the typed value in its own unit, not the field's parse: the workflow's own parse is the one that counts.
    return typed;
  }
}
