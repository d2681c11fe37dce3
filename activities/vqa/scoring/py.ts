/**
 * Python string and number semantics that the lmms-eval scorers rely on, so that our rules give the
 * same answers on odd inputs: `str.strip()` / `str.split()` (Python's whitespace set, not JS's),
 * `str.strip(chars)`, `float(text)` (underscores, `inf`, `nan`, surrounding whitespace),
 * `round(x, 2)` (ties to even on the exact binary value), `str.capitalize()`, `str.isalpha()`, and
 * lengths in code points. Pure: no Node imports.
 */

/** Characters for which Python's `str.isspace()` is true. */
const PY_WHITESPACE = new Set<string>([
  '\t', '\n', '\v', '\f', '\r',
  '\x1c', '\x1d', '\x1e', '\x1f',
  ' ', '\x85', '\xa0', '\u1680',
  '\u2000', '\u2001', '\u2002', '\u2003', '\u2004', '\u2005', '\u2006', '\u2007', '\u2008', '\u2009', '\u200a',
  '\u2028', '\u2029', '\u202f', '\u205f', '\u3000',
]);

export const isPyWhitespace = (ch: string): boolean => PY_WHITESPACE.has(ch);

/** The code points of a string (Python indexes strings by code point). */
export const codePoints = (s: string): string[] => Array.from(s);

/** Python `len(s)`. */
export const pyLen = (s: string): number => codePoints(s).length;

function stripWith(s: string, drop: (ch: string) => boolean, left: boolean, right: boolean): string {
  const cps = codePoints(s);
  let start = 0;
  let end = cps.length;
  if (left) while (start < end && drop(cps[start]!)) start++;
  if (right) while (end > start && drop(cps[end - 1]!)) end--;
  return cps.slice(start, end).join('');
}

const dropper = (chars: string | undefined): ((ch: string) => boolean) => {
  if (chars === undefined) return isPyWhitespace;
  const set = new Set(codePoints(chars));
  return (ch) => set.has(ch);
};

/** Python `s.strip()` / `s.strip(chars)`. */
export const pyStrip = (s: string, chars?: string): string => stripWith(s, dropper(chars), true, true);
/** Python `s.rstrip()` / `s.rstrip(chars)`. */
export const pyRStrip = (s: string, chars?: string): string => stripWith(s, dropper(chars), false, true);

/** Python `s.split()` (no separator: runs of whitespace, no empty fields). */
export function pySplit(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const ch of s) {
    if (isPyWhitespace(ch)) {
      if (cur !== '') out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur !== '') out.push(cur);
  return out;
}

/** Python `ch.isalpha()` for one code point (Unicode categories Lu, Ll, Lt, Lm, Lo). */
export const pyIsAlpha = (ch: string): boolean => /^\p{L}$/u.test(ch);

/** Python `s.capitalize()`: first code point upper-cased, the rest lower-cased. */
export function pyCapitalize(s: string): string {
  const cps = codePoints(s);
  if (cps.length === 0) return s;
  return cps[0]!.toUpperCase() + cps.slice(1).join('').toLowerCase();
}

const DIGITS = String.raw`[0-9](?:_?[0-9])*`;
const PY_FLOAT = new RegExp(String.raw`^[+-]?(?:${DIGITS}(?:\.(?:${DIGITS})?)?|\.${DIGITS})(?:[eE][+-]?${DIGITS})?$`);
const PY_SPECIAL = /^([+-]?)(inf|infinity|nan)$/i;

/**
 * Python `float(text)`, or null where Python raises ValueError. Accepts what Python accepts for
 * ASCII input: surrounding whitespace, a sign, `1_000`, `.5`, `5.`, `1e3`, `inf`, `nan`
 * (non-ASCII digits, which Python also accepts, are not handled).
 */
export function pyFloat(text: string): number | null {
  const s = pyStrip(text);
  if (PY_FLOAT.test(s)) return Number(s.replaceAll('_', ''));
  const special = PY_SPECIAL.exec(s);
  if (special) {
    if (special[2]!.toLowerCase() === 'nan') return Number.NaN;
    return special[1] === '-' ? -Infinity : Infinity;
  }
  return null;
}

/** Python `round(x, 2)`: the exact binary value rounded to 2 decimals, ties to even. */
export function pyRound2(x: number): number {
  if (!Number.isFinite(x)) return x;
  // An exact tie (x * 100 ends in .5 exactly) needs x = odd / 8 plus an integer.
  if (Number.isInteger(x * 8) && !Number.isInteger(x * 4)) {
    const lo = Math.floor(x * 100);
    return (lo % 2 === 0 ? lo : lo + 1) / 100;
  }
  // toFixed rounds the exact binary value to the nearest 2-decimal number (no tie here).
  return Number(x.toFixed(2));
}

/**
 * Python `str(x)` of a float (its repr): the shortest digits that read back, in fixed notation from
 * 1e-4 up to 1e16 (`2.0`, `0.0001`), else `1e+16`, `1.5e-05`; `inf`, `nan`, `-0.0`.
 */
export function pyFloatStr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // toExponential() without an argument gives the shortest round-trip digits, as Python's repr.
  const [mantissa, expText] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) {
    const frac = digits.slice(1);
    return `${sign}${digits[0]}${frac ? `.${frac}` : ''}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  return `${sign}${digits.slice(0, exp + 1).padEnd(exp + 1, '0')}.${digits.slice(exp + 1) || '0'}`;
}

/** Python `text.lower()` (JS case mapping is the Unicode default mapping, as Python's). */
export const pyLower = (s: string): string => s.toLowerCase();
