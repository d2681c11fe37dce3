/**
 * Python literals as `ast.literal_eval` reads them, for the benchmark files that store answer lists
 * and image lists as the `repr` of a Python list (VLMEvalKit's TSV release: `['a\n', "it's"]`).
 *
 * Supported, with Python's meaning: str literals in single, double and triple quotes; the prefixes
 * r/R (raw) and u/U; every escape of a str literal (`\\ \' \" \a \b \f \n \r \t \v`, a backslash
 * before a newline, octal `\ooo`, `\xhh`, `\uhhhh`, `\Uhhhhhhhh`; an unknown escape such as `\d`
 * keeps its backslash); adjacent literals concatenated (`'a' "b"`); ints (decimal, 0x, 0o, 0b,
 * underscores) and floats, with one leading sign; lists and tuples (trailing comma, `()`, a bare
 * top-level `1, 2`, parentheses around a single value); comments and backslash line continuation
 * between tokens.
 *
 * Refused with a `PyLiteralError` naming the column, although Python accepts them: `\N{...}` escapes
 * (would need Unicode's name table), bytes, complex numbers, dicts, sets, True/False/None. Every
 * input Python refuses is refused too. Pure: no Node imports.
 */
import { pyFloatStr } from './scoring/py';

export type PyValue =
  | { kind: 'str'; value: string }
  | { kind: 'int'; value: bigint }
  | { kind: 'float'; value: number }
  | { kind: 'list'; items: PyValue[] }
  | { kind: 'tuple'; items: PyValue[] };

/** A literal Python would not read, or one this reader does not support; `column` is 1-based. */
export class PyLiteralError extends Error {
  override name = 'PyLiteralError';
  constructor(
    readonly reason: string,
    readonly column: number,
  ) {
    super(`${reason} (at character ${column})`);
  }
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

const DIGITS = String.raw`[0-9](?:_?[0-9])*`;
const POINT_FLOAT = String.raw`(?:(?:${DIGITS})?\.${DIGITS}|${DIGITS}\.)`;
const EXPONENT_FLOAT = String.raw`(?:${DIGITS}|${POINT_FLOAT})[eE][+-]?${DIGITS}`;
const FLOAT = String.raw`(?:${EXPONENT_FLOAT}|${POINT_FLOAT})`;
const NUMBER_PATTERNS: readonly { kind: 'imaginary' | 'float' | 'int'; re: RegExp }[] = [
  { kind: 'imaginary', re: new RegExp(String.raw`(?:${FLOAT}|${DIGITS})[jJ]`, 'y') },
  { kind: 'float', re: new RegExp(FLOAT, 'y') },
  { kind: 'int', re: /0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|[1-9](?:_?[0-9])*|0+(?:_?0)*/y },
];
const IDENTIFIER = /[A-Za-z_][A-Za-z0-9_]*/y;
const STR_PREFIXES = new Set(['', 'r', 'u']);

class Reader {
  private pos = 0;
  private depth = 0;
  constructor(private readonly src: string) {}

  private fail(reason: string, at = this.pos): never {
    throw new PyLiteralError(reason, at + 1);
  }

  private peek(offset = 0): string | undefined {
    return this.src[this.pos + offset];
  }

  /** Spaces, comments and continuation lines; newlines only inside brackets (or when `newlines`). */
  private skip(newlines = this.depth > 0): void {
    for (;;) {
      const ch = this.peek();
      if (ch === ' ' || ch === '\t' || ch === '\f') this.pos++;
      else if ((ch === '\n' || ch === '\r') && newlines) this.pos++;
      else if (ch === '#') while (this.pos < this.src.length && this.peek() !== '\n' && this.peek() !== '\r') this.pos++;
      else if (ch === '\\') {
        const next = this.peek(1);
        if (next === '\n') this.pos += 2;
        else if (next === '\r') this.pos += this.peek(2) === '\n' ? 3 : 2;
        else this.fail('unexpected character after line continuation character');
      } else return;
    }
  }

  parse(): PyValue {
    // ast.literal_eval strips leading spaces and tabs before parsing.
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
    this.skip(true);
    if (this.pos >= this.src.length) this.fail('empty literal');
    const first = this.value();
    this.skip(false);
    let result = first;
    if (this.peek() === ',') result = { kind: 'tuple', items: this.sequenceAfterFirst(first, undefined) };
    this.skip(true);
    if (this.pos < this.src.length) this.fail(`unexpected ${JSON.stringify(this.peek())} after the literal`);
    return result;
  }

  /** Items after a first one and a comma, up to `close` (or the end, for a bare top-level tuple). */
  private sequenceAfterFirst(first: PyValue, close: string | undefined): PyValue[] {
    const items = [first];
    while (this.peek() === ',') {
      this.pos++;
      this.skip();
      const ch = this.peek();
      if (ch === close || (close === undefined && (ch === undefined || ch === '\n' || ch === '\r'))) break;
      items.push(this.value());
      this.skip();
    }
    return items;
  }

  private bracketed(open: string, close: string): PyValue[] {
    const start = this.pos;
    this.pos++;
    this.depth++;
    this.skip();
    const items: PyValue[] = [];
    if (this.peek() !== close) {
      const first = this.value();
      this.skip();
      items.push(...this.sequenceAfterFirst(first, close));
    }
    if (this.peek() !== close) this.fail(this.pos >= this.src.length ? `'${open}' was never closed` : `expected ',' or '${close}'`, this.pos >= this.src.length ? start : this.pos);
    this.pos++;
    this.depth--;
    return items;
  }

  private value(): PyValue {
    const ch = this.peek();
    if (ch === undefined) this.fail('unexpected end of the literal');
    if (ch === '[') return { kind: 'list', items: this.bracketed('[', ']') };
    if (ch === '(') return this.parenthesised();
    if (ch === '{') this.fail('dicts and sets are not supported');
    if (ch === '-' || ch === '+') {
      this.pos++;
      this.skip();
      const n = this.number();
      if (!n) this.fail('a sign must be followed by a number');
      if (ch === '+') return n;
      return n.kind === 'int' ? { kind: 'int', value: -n.value } : { kind: 'float', value: -n.value };
    }
    const n = this.number();
    if (n) return n;
    if (ch === "'" || ch === '"' || /[A-Za-z_]/.test(ch)) return this.strings();
    return this.fail(`unexpected ${JSON.stringify(ch)}`);
  }

  private parenthesised(): PyValue {
    const start = this.pos;
    this.pos++;
    this.depth++;
    this.skip();
    if (this.peek() === ')') {
      this.pos++;
      this.depth--;
      return { kind: 'tuple', items: [] };
    }
    const first = this.value();
    this.skip();
    let result = first;
    if (this.peek() === ',') result = { kind: 'tuple', items: this.sequenceAfterFirst(first, ')') };
    if (this.peek() !== ')') this.fail(this.pos >= this.src.length ? "'(' was never closed" : "expected ',' or ')'", this.pos >= this.src.length ? start : this.pos);
    this.pos++;
    this.depth--;
    return result;
  }

  private number(): Extract<PyValue, { kind: 'int' | 'float' }> | undefined {
    const start = this.pos;
    const ch = this.peek();
    if (ch === undefined || !/[0-9.]/.test(ch) || (ch === '.' && !/[0-9]/.test(this.peek(1) ?? ''))) return undefined;
    for (const { kind, re } of NUMBER_PATTERNS) {
      re.lastIndex = start;
      const m = re.exec(this.src);
      if (!m) continue;
      const end = start + m[0].length;
      if (/[A-Za-z0-9_.]/.test(this.src[end] ?? '')) this.fail('invalid number literal', start);
      if (kind === 'imaginary') this.fail('complex numbers are not supported', start);
      this.pos = end;
      const text = m[0].replaceAll('_', '');
      return kind === 'int' ? { kind: 'int', value: BigInt(text) } : { kind: 'float', value: Number(text) };
    }
    return this.fail('invalid number literal', start);
  }

  /** One or more adjacent string literals, concatenated. */
  private strings(): PyValue {
    let value = '';
    do {
      value += this.stringLiteral();
      this.skip();
    } while (this.startsString());
    return { kind: 'str', value };
  }

  private startsString(): boolean {
    const ch = this.peek();
    if (ch === "'" || ch === '"') return true;
    if (ch === undefined || !/[A-Za-z_]/.test(ch)) return false;
    IDENTIFIER.lastIndex = this.pos;
    const m = IDENTIFIER.exec(this.src)!;
    const after = this.src[this.pos + m[0].length];
    return m[0].length <= 2 && (after === "'" || after === '"');
  }

  private stringLiteral(): string {
    const start = this.pos;
    let prefix = '';
    if (/[A-Za-z_]/.test(this.peek() ?? '')) {
      IDENTIFIER.lastIndex = this.pos;
      const name = IDENTIFIER.exec(this.src)![0];
      const after = this.src[this.pos + name.length];
      if (after !== "'" && after !== '"') {
        if (name === 'True' || name === 'False' || name === 'None') this.fail(`${name} is not supported`);
        this.fail(`unexpected name ${JSON.stringify(name)} (strings need quotes)`);
      }
      prefix = name.toLowerCase();
      if (/^(?:b|br|rb)$/.test(prefix)) this.fail('bytes literals are not supported');
      if (/^(?:f|fr|rf|t|tr|rt)$/.test(prefix)) this.fail('f-strings are not literals');
      if (!STR_PREFIXES.has(prefix)) this.fail(`invalid string prefix ${JSON.stringify(name)}`);
      this.pos += name.length;
    }
    const raw = prefix === 'r';
    const quote = this.peek()!;
    const triple = this.peek(1) === quote && this.peek(2) === quote;
    const delimiter = triple ? quote.repeat(3) : quote;
    this.pos += delimiter.length;
    let out = '';
    for (;;) {
      if (this.pos >= this.src.length) this.fail(triple ? 'unterminated triple-quoted string literal' : 'unterminated string literal', start);
      if (this.src.startsWith(delimiter, this.pos)) {
        this.pos += delimiter.length;
        return out;
      }
      const ch = this.src[this.pos]!;
      if (ch === '\n' || ch === '\r') {
        if (!triple) this.fail('unterminated string literal', start);
        // The tokenizer reads \r\n and a lone \r as \n.
        this.pos += ch === '\r' && this.peek(1) === '\n' ? 2 : 1;
        out += '\n';
        continue;
      }
      if (ch === '\0') this.fail('a literal cannot contain a null character');
      if (ch !== '\\') {
        out += ch;
        this.pos++;
        continue;
      }
      out += raw ? this.rawEscape() : this.escape();
    }
  }

  /** In a raw string a backslash escapes nothing but still keeps the next character from ending it. */
  private rawEscape(): string {
    const next = this.peek(1);
    if (next === undefined) this.fail('unterminated string literal');
    if (next === '\r') {
      this.pos += this.peek(2) === '\n' ? 3 : 2;
      return '\\\n';
    }
    if (next === '\0') this.fail('a literal cannot contain a null character', this.pos + 1);
    this.pos += 2;
    return `\\${next}`;
  }

  private hexEscape(letter: string, digits: number): string {
    const at = this.pos;
    const hex = this.src.slice(this.pos + 2, this.pos + 2 + digits);
    if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(hex)) this.fail(`truncated \\${letter}${'X'.repeat(digits)} escape`, at);
    const cp = Number.parseInt(hex, 16);
    if (cp > 0x10ffff) this.fail(`illegal Unicode character in \\${letter} escape`, at);
    this.pos += 2 + digits;
    return String.fromCodePoint(cp);
  }

  private escape(): string {
    const next = this.peek(1);
    if (next === undefined) this.fail('unterminated string literal');
    if (next === '\n') {
      this.pos += 2;
      return '';
    }
    if (next === '\r') {
      this.pos += this.peek(2) === '\n' ? 3 : 2;
      return '';
    }
    const simple = SIMPLE_ESCAPES[next];
    if (simple !== undefined) {
      this.pos += 2;
      return simple;
    }
    if (/[0-7]/.test(next)) {
      const m = /[0-7]{1,3}/y;
      m.lastIndex = this.pos + 1;
      const digits = m.exec(this.src)![0];
      this.pos += 1 + digits.length;
      return String.fromCodePoint(Number.parseInt(digits, 8));
    }
    if (next === 'x') return this.hexEscape('x', 2);
    if (next === 'u') return this.hexEscape('u', 4);
    if (next === 'U') return this.hexEscape('U', 8);
    if (next === 'N') this.fail('\\N{...} escapes are not supported');
    if (next === '\0') this.fail('a literal cannot contain a null character', this.pos + 1);
    // Python keeps an unknown escape as it is (with a warning).
    this.pos += 2;
    return `\\${next}`;
  }
}

/** Parses `source` as `ast.literal_eval` would (within the subset above). */
export function parsePyLiteral(source: string): PyValue {
  return new Reader(source).parse();
}

/** Python `str()` of a scalar (str, int, float); undefined for a list or tuple. */
export function pyScalarStr(value: PyValue): string | undefined {
  if (value.kind === 'str') return value.value;
  if (value.kind === 'int') return value.value.toString();
  if (value.kind === 'float') return pyFloatStr(value.value);
  return undefined;
}
