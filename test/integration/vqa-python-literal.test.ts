/**
 * The Python literal reader (activities/vqa/python-literal.ts) against Python itself: thousands of
 * literals, written by Python's own `repr` and composed from random pieces (every escape kind, raw
 * and unicode prefixes, all four quote styles, adjacent literals, lists, tuples, numbers), evaluated
 * by `ast.literal_eval` in the project's Python environment and by our reader; the values must be
 * equal, and what Python refuses we refuse too.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parsePyLiteral, PyLiteralError, pyScalarStr, type PyValue } from '../../activities/vqa/python-literal';
import { loadConfig } from '../../infra/config';
import { ensurePythonEnv } from '../../infra/python';

const run = promisify(execFile);

/** Tagged like the Python side below, so the two compare as JSON. */
type Tagged = { str: string } | { int: string } | { float: string } | { list: Tagged[] } | { tuple: Tagged[] };
const tag = (v: PyValue): Tagged => {
  if (v.kind === 'list') return { list: v.items.map(tag) };
  if (v.kind === 'tuple') return { tuple: v.items.map(tag) };
  return { [v.kind]: pyScalarStr(v)! } as Tagged;
};

const GENERATOR = String.raw`
import ast, json, random, sys, warnings
warnings.simplefilter('ignore')
rng = random.Random(20509)
PIECES = ['a', 'Z', ' ', '0', '7', 'é', '中', '😀', '\t', "'", '"', '\\\\', '\\n', '\\t', '\\r', '\\a', '\\b', '\\f',
          '\\v', "\\'", '\\"', '\\x41', '\\xe9', '\\u00e9', '\\u4e2d', '\\U0001F600', '\\101', '\\0', '\\12', '\\777',
          '\\8', '\\d', '\\frac', '\\(', '\\\n', '{', '}', '#', ',', '[', ']', '$x^2$']
def piece_list(quote, raw):
    out = []
    for _ in range(rng.randint(0, 6)):
        p = rng.choice(PIECES)
        if not raw and p.endswith('\\') and not p.endswith('\\\\'):
            continue
        out.append(p)
    return ''.join(out)
def string_literal():
    prefix = rng.choice(['', '', '', 'r', 'R', 'u', 'U'])
    quote = rng.choice(["'", '"', "'''", '"""'])
    body = piece_list(quote, prefix.lower() == 'r')
    if len(quote) == 1:
        body = body.replace('\n', '')
    return prefix + quote + body + quote
def number():
    return rng.choice(['0', '7', '-3', '+4', '1_000', '0x1F', '0o17', '0b101', '00', '1.5', '.5', '5.', '1e-7', '-2.5e+20',
                       '1e16', '123456789012345678901234567890', '0.0001', '1E5', '-0.0', '3.14159', '1e400'])
def value(depth=0):
    r = rng.random()
    if depth < 2 and r < 0.25:
        items = [value(depth + 1) for _ in range(rng.randint(0, 3))]
        sep = rng.choice([', ', ',', ' ,\n ', ',\t'])
        trailing = rng.choice(['', ','])
        if rng.random() < 0.5:
            return '[' + sep.join(items) + (trailing if items else '') + ']'
        return '(' + sep.join(items) + (',' if len(items) == 1 else (trailing if items else '')) + ')'
    if r < 0.35:
        return number()
    return ' '.join(string_literal() for _ in range(rng.randint(1, 2)))
sources = []
for _ in range(1500):
    vals = [''.join(rng.choice(['a', "'", '"', '\\', '\n', '\t', 'é', '😀', '\x00', '\x7f', 'x', ' ', '\u2028', '\ud800']) for _ in range(rng.randint(0, 8))) for _ in range(rng.randint(0, 4))]
    sources.append(repr(vals))
for _ in range(2500):
    sources.append(value())
sources += ["['a' 'b']", "['a',, 'b']", "['\\x4']", "['\\u12']", "'\\U00110000'", "[1 2]", "['abc]", "'a\nb'", "01", "1__0", "0x",
            "1.e", "--1", "-'a'", "[1,\n2]", "(1)", "()", "(1,)", "1, 2", "[\n'a', # c\n 'b']", "'a' \\\n 'b'", "'''x''''", "r'\\'",
            "r'\\''", "'\\N{BULLET}'", "b'x'", "f'x'", "1j", "True", "None", "{1: 2}", "{1}", "ur'x'", "[", "]", "", "  [1]", "'a'\n'b'",
            "'a\\\nb'", "r'a\\\nb'", "'''a\r\nb'''"]
def enc(v):
    if isinstance(v, str): return {'str': v}
    if isinstance(v, bool) or v is None: return {'other': type(v).__name__}
    if isinstance(v, int): return {'int': str(v)}
    if isinstance(v, float): return {'float': repr(v)}
    if isinstance(v, list): return {'list': [enc(x) for x in v]}
    if isinstance(v, tuple): return {'tuple': [enc(x) for x in v]}
    return {'other': type(v).__name__}
out = []
for s in sources:
    try:
        out.append({'src': s, 'ok': enc(ast.literal_eval(s))})
    except Exception as e:
        out.append({'src': s, 'error': type(e).__name__})
json.dump(out, sys.stdout)
`;

interface Case {
  src: string;
  ok?: unknown;
  error?: string;
}

const hasOther = (v: unknown): boolean => JSON.stringify(v).includes('"other"');
/** What Python reads but we refuse on purpose, each with a message that says so. */
const UNSUPPORTED = /not supported|not literals/;

describe('Python literals', () => {
  it('reads what ast.literal_eval reads, with the same values, and refuses what it refuses', async () => {
    const { cacheDir } = loadConfig();
    const py = await ensurePythonEnv(cacheDir);
    const { stdout } = await run(py.python, ['-c', GENERATOR], { env: py.env, maxBuffer: 64 * 1024 * 1024 });
    const cases = JSON.parse(stdout) as Case[];
    expect(cases.length).toBeGreaterThan(4000);
    const mismatches: string[] = [];
    let accepted = 0;
    for (const c of cases) {
      let ours: Tagged | PyLiteralError;
      try {
        ours = tag(parsePyLiteral(c.src));
      } catch (err) {
        if (!(err instanceof PyLiteralError)) throw err;
        ours = err;
      }
      if (c.ok !== undefined && !hasOther(c.ok)) {
        accepted++;
        if (ours instanceof PyLiteralError) {
          if (!UNSUPPORTED.test(ours.message) || !c.src.includes('\\N')) mismatches.push(`${JSON.stringify(c.src)}: Python reads it, we say ${ours.message}`);
        } else if (JSON.stringify(ours) !== JSON.stringify(c.ok)) {
          mismatches.push(`${JSON.stringify(c.src)}: Python ${JSON.stringify(c.ok)}, ours ${JSON.stringify(ours)}`);
        }
      } else if (c.ok !== undefined) {
        // True/None/dicts/sets/bytes/complex: Python reads them; we refuse by name.
        if (!(ours instanceof PyLiteralError) || !UNSUPPORTED.test(ours.message)) mismatches.push(`${JSON.stringify(c.src)}: expected an "unsupported" refusal, got ${ours instanceof PyLiteralError ? ours.message : JSON.stringify(ours)}`);
      } else if (!(ours instanceof PyLiteralError)) {
        // \N{...} is refused by us whether or not Python knows the name.
        mismatches.push(`${JSON.stringify(c.src)}: Python raises ${c.error}, we read ${JSON.stringify(ours)}`);
      }
    }
    expect(mismatches.slice(0, 20)).toEqual([]);
    expect(accepted).toBeGreaterThan(3000);
  });

  it('reads the escapes OCRBench-style answer lists carry, and names the place of a broken one', () => {
    expect(tag(parsePyLiteral(String.raw`['x^{2}\n+1', '\\frac{a}{b}', "it's", 'tab\there', 'caf\xe9', '\u4e2d', r'\d', '\101']`))).toEqual({
      list: [{ str: 'x^{2}\n+1' }, { str: '\\frac{a}{b}' }, { str: "it's" }, { str: 'tab\there' }, { str: 'café' }, { str: '中' }, { str: '\\d' }, { str: 'A' }],
    });
    expect(tag(parsePyLiteral("[3, -2.50, 1e16, 'a' \"b\"]"))).toEqual({ list: [{ int: '3' }, { float: '-2.5' }, { float: '1e+16' }, { str: 'ab' }] });
    expect(() => parsePyLiteral("['ok', 'broken]")).toThrow(/unterminated string literal \(at character 8\)/);
    expect(() => parsePyLiteral("['\\x4g']")).toThrow(/truncated \\xXX escape/);
    expect(() => parsePyLiteral('[True]')).toThrow(/True is not supported/);
    expect(() => parsePyLiteral("['\\N{BULLET}']")).toThrow(/\\N\{\.\.\.\} escapes are not supported/);
  });
});
