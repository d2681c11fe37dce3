/**
 * Plan hit (docs/method.md, "Partial credit and plan hit"): a subtask plan hits when it names the task's object(s)
 * and destination(s), by keyword, case-insensitively, any synonym or language counting
 * (eggplant/aubergine/brinjal/berenjena/茄子/बैंगन, carrot/gajar, ...; `objectSynonyms`). Pure functions.
 */
import { foldText, objectSynonyms } from '../sim/languages';
import { groundSpec, type Task } from '../sim/tasks';
import { OBJECT_KINDS, type ObjectKind, type World } from '../sim/world';

export interface PlanHit {
  /** Both: the plan names every object to move and every destination. */
  readonly hit: boolean;
  /** Every object the task moves (picks up) is named. */
  readonly object: boolean;
  /** Every destination (receptacle) is named; true for tasks without one (pick up). */
  readonly destination: boolean;
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * One matcher per synonym, longest first so that "frying pan" or 平底锅 (pan) is read before pan or
 * 锅 (pot). Words match whole (a letter, mark or digit on neither side), with an English plural
 * allowed; Chinese, written without spaces, matches anywhere.
 */
const MATCHERS: readonly { readonly kind: ObjectKind; readonly re: RegExp }[] = OBJECT_KINDS.flatMap((kind) =>
  objectSynonyms(kind).map((name) => ({ kind, name: foldText(name) })),
)
  .sort((a, b) => b.name.length - a.name.length)
  .map(({ kind, name }) => {
    const word = escapeRegExp(name);
    if (/\p{Script=Han}/u.test(name)) return { kind, re: new RegExp(word, 'gu') };
    const plural = /^[a-z ]+$/.test(name) ? '(?:e?s)?' : '';
    return { kind, re: new RegExp(`(?<![\\p{L}\\p{M}\\p{N}])${word}${plural}(?![\\p{L}\\p{M}\\p{N}])`, 'gu') };
  });

/** The object kinds a text names, by any synonym in any language. */
export function namedObjects(text: string): Set<ObjectKind> {
  let rest = foldText(text);
  const named = new Set<ObjectKind>();
  for (const { kind, re } of MATCHERS) {
    rest = rest.replace(re, (m) => {
      named.add(kind);
      // Blank it out so a shorter name inside it (pan in "frying pan") is not read again.
      return ' '.repeat(m.length);
    });
  }
  return named;
}

/**
 * Whether `subtasks` name the right object and destination for `task`. A task that names its object
 * by where it lies ("the item above Ash Ketchum") needs the episode's initial `world` to know which
 * object that is; naming the card does not count.
 */
export function planHit(subtasks: readonly string[], task: Task, world?: World): PlanHit {
  const steps = groundSpec(task.spec, world).steps;
  const named = namedObjects(subtasks.join('\n'));
  const objects = steps.map((s) => (s.kind === 'pick_place' ? s.source : s.object));
  const destinations = steps.flatMap((s) => (s.kind === 'pick_place' ? [s.target] : []));
  const object = objects.every((k) => named.has(k));
  const destination = destinations.every((k) => named.has(k));
  return { hit: object && destination, object, destination };
}
