/**
 * Instructions in other languages (the paper's multilingual pick-up task of Figure 5: Spanish,
 * Mandarin and Hindi): a small lexicon of verbs and object names per language, enough to understand
 * and to word "pick up <object>" for every graspable object, mapped to the same English task.
 *
 * Text is normalised without assuming Latin script: NFC, Latin accents dropped (so "sarten" and
 * "sartén" match), punctuation of any script (。，！？ ¿¡ ।) removed, and spaces dropped in Chinese.
 */
import { InstructionLanguage } from '../../../data-schemas/robot';
import type { Rng } from './rng';
import type { Task } from './tasks';
import { OBJECT_KINDS, OBJECT_SPECS, type ObjectKind } from './world';

export const LANGUAGES = InstructionLanguage.options;
export type Language = InstructionLanguage;
export const LANGUAGE_NAMES: Readonly<Record<Language, string>> = { en: 'English', es: 'Spanish', zh: 'Mandarin', hi: 'Hindi' };
/** The languages the lexicon translates from. */
export type ForeignLanguage = Exclude<Language, 'en'>;

interface Lexicon {
  /** Names of each object, the first used when wording. */
  readonly names: Readonly<Record<ObjectKind, readonly string[]>>;
  /** A "pick up <object>" clause (already normalised) -> the object phrase, or undefined. */
  readonly pickUp: (clause: string) => string | undefined;
  /** Ways to say "pick up <name>", the first the canonical one. */
  readonly wordings: readonly ((kind: ObjectKind) => string)[];
}

const ES_ARTICLE: Readonly<Record<ObjectKind, 'el' | 'la'>> = {
  carrot: 'la',
  eggplant: 'la',
  pan: 'la',
  plate: 'el',
  fish: 'el',
  pot: 'la',
  spoon: 'la',
  towel: 'la',
  basket: 'la',
  cup: 'la',
  green_block: 'el',
  yellow_block: 'el',
  picture_card: 'la',
};

const ES: Lexicon = {
  names: {
    carrot: ['zanahoria'],
    eggplant: ['berenjena'],
    pan: ['sartén'],
    plate: ['plato'],
    fish: ['pescado', 'pez'],
    pot: ['olla', 'cacerola'],
    spoon: ['cuchara'],
    towel: ['toalla', 'paño', 'trapo'],
    basket: ['cesta', 'canasta'],
    cup: ['taza', 'vaso'],
    green_block: ['bloque verde', 'cubo verde'],
    yellow_block: ['bloque amarillo', 'cubo amarillo'],
    picture_card: ['tarjeta'],
  },
  pickUp: (clause) =>
    /^(?:por favor )?(?:recoge|recoja|recoger|levanta|levante|levantar|agarra|agarre|agarrar|toma|tome|tomar|coge|coja|coger|alza|alce) (?:(?:el|la|los|las|un|una) )?(.+?)(?: por favor)?$/.exec(
      clause,
    )?.[1],
  wordings: [
    (k) => `recoge ${ES_ARTICLE[k]} ${esName(k)}`,
    (k) => `levanta ${ES_ARTICLE[k]} ${esName(k)}`,
    (k) => `agarra ${ES_ARTICLE[k]} ${esName(k)}`,
    (k) => `toma ${ES_ARTICLE[k]} ${esName(k)}, por favor`,
  ],
};

const ZH: Lexicon = {
  names: {
    carrot: ['胡萝卜', '红萝卜'],
    eggplant: ['茄子'],
    pan: ['平底锅', '煎锅'],
    plate: ['盘子', '碟子'],
    fish: ['鱼'],
    pot: ['锅', '汤锅'],
    spoon: ['勺子', '汤匙', '调羹'],
    towel: ['毛巾', '抹布'],
    basket: ['篮子'],
    cup: ['杯子'],
    green_block: ['绿色方块', '绿色积木', '绿方块'],
    yellow_block: ['黄色方块', '黄色积木', '黄方块'],
    picture_card: ['卡片'],
  },
  pickUp: (clause) =>
    /^(?:请)?(?:你)?(?:拿起|捡起|举起|抓起|提起)(?:来)?(?:那个|这个|一个)?(.+?)(?:来)?$/.exec(clause)?.[1] ??
    /^(?:请)?(?:你)?把(?:那个|这个)?(.+?)(?:拿起来|捡起来|举起来|抓起来|提起来|拿起|捡起|举起)$/.exec(clause)?.[1],
  wordings: [(k) => `拿起${zhName(k)}`, (k) => `把${zhName(k)}拿起来`, (k) => `请拿起${zhName(k)}。`, (k) => `捡起${zhName(k)}`],
};

/** Adjectives take their oblique form before "को" (हरा ब्लॉक -> हरे ब्लॉक को). */
const HI_OBLIQUE: Partial<Record<ObjectKind, string>> = { green_block: 'हरे ब्लॉक', yellow_block: 'पीले ब्लॉक' };

const HI: Lexicon = {
  names: {
    carrot: ['गाजर'],
    eggplant: ['बैंगन'],
    pan: ['पैन', 'कड़ाही'],
    plate: ['प्लेट', 'थाली'],
    fish: ['मछली'],
    pot: ['पतीला', 'बर्तन'],
    spoon: ['चम्मच'],
    towel: ['तौलिया', 'कपड़ा'],
    basket: ['टोकरी'],
    cup: ['कप', 'प्याला'],
    green_block: ['हरा ब्लॉक', 'हरे ब्लॉक', 'हरा घन'],
    yellow_block: ['पीला ब्लॉक', 'पीले ब्लॉक', 'पीला घन'],
    picture_card: ['कार्ड', 'तस्वीर'],
  },
  pickUp: (clause) => HI_PICK_UP.exec(clause)?.[1],
  wordings: [(k) => `${hiName(k)} उठाओ`, (k) => `${HI_OBLIQUE[k] ?? hiName(k)} को उठाओ`, (k) => `कृपया ${hiName(k)} उठाइए`, (k) => `${hiName(k)} उठा लो`],
};

/** Hindi puts the verb last; built from normalised words so nukta letters (पकड़ो) match however they were typed. */
const HI_VERBS = ['उठाओ', 'उठाइए', 'उठाइये', 'उठाएं', 'उठाएँ', 'उठा लो', 'उठा लीजिए', 'उठाना', 'पकड़ो', 'पकड़ कर उठाओ'].map(foldInstruction);
const HI_PLEASE = foldInstruction('कृपया');
const HI_PICK_UP = new RegExp(`^(?:${HI_PLEASE} )?(.+?)(?: को)? (?:${HI_VERBS.join('|')})(?: ${HI_PLEASE})?$`);

const LEXICONS: Readonly<Record<ForeignLanguage, Lexicon>> = { es: ES, zh: ZH, hi: HI };

function esName(k: ObjectKind): string {
  return ES.names[k][0] ?? k;
}
function zhName(k: ObjectKind): string {
  return ZH.names[k][0] ?? k;
}
function hiName(k: ObjectKind): string {
  return HI.names[k][0] ?? k;
}

/** Lower case, Latin accents and every script's punctuation dropped, spaces collapsed: text to match words in. */
export function foldText(text: string): string {
  return text
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .normalize('NFC')
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** An instruction folded for parsing; Chinese is written without spaces, so it loses them. */
export function foldInstruction(text: string): string {
  const norm = foldText(text);
  return /\p{Script=Han}/u.test(norm) ? norm.replace(/ /g, '') : norm;
}

const NAME_TO_KIND: Readonly<Record<ForeignLanguage, ReadonlyMap<string, ObjectKind>>> = {
  es: nameIndex(ES),
  zh: nameIndex(ZH),
  hi: nameIndex(HI),
};

function nameIndex(lexicon: Lexicon): Map<string, ObjectKind> {
  return new Map(OBJECT_KINDS.flatMap((k) => lexicon.names[k].map((n) => [foldInstruction(n), k] as const)));
}

export interface ForeignPickUp {
  readonly lang: ForeignLanguage;
  /** The object phrase as written (normalised). */
  readonly object: string;
  /** Its kind, undefined when the lexicon does not know the word. */
  readonly kind: ObjectKind | undefined;
}

/** A "pick up <object>" instruction in Spanish, Mandarin or Hindi; undefined when it is none of them. */
export function matchForeignPickUp(text: string): ForeignPickUp | undefined {
  const clause = foldInstruction(text);
  for (const lang of ['es', 'zh', 'hi'] as const) {
    const object = LEXICONS[lang].pickUp(clause);
    if (object !== undefined) return { lang, object, kind: NAME_TO_KIND[lang].get(object) };
  }
  return undefined;
}

/**
 * The instruction of `task` in `lang`: the canonical wording without `rng`, else one of several.
 * English is the task's own wording; the other languages cover single pick-up tasks (the paper's
 * multilingual task) and throw for anything else.
 */
export function instructionIn(task: Task, lang: Language, rng?: Rng): string {
  if (lang === 'en') return rng ? task.phrase(rng) : task.text;
  const [step, ...more] = task.spec.steps;
  if (!step || more.length > 0 || step.kind !== 'pick_up') throw new Error(`no ${LANGUAGE_NAMES[lang]} wording for "${task.text}": only single pick-up tasks are translated`);
  const wordings = LEXICONS[lang].wordings;
  const wording = rng ? rng.pick(wordings) : wordings[0];
  if (!wording) throw new Error(`no ${LANGUAGE_NAMES[lang]} wordings`);
  return wording(step.object);
}

/**
 * Every word for an object in every language: its English names and aliases (e.g. eggplant,
 * aubergine, brinjal, baingan; carrot, gajar) and the lexicon's names (berenjena, 茄子, बैंगन).
 */
export function objectSynonyms(kind: ObjectKind): readonly string[] {
  const spec = OBJECT_SPECS[kind];
  return [...new Set([...spec.names, ...(spec.aliases ?? []), ...ES.names[kind], ...ZH.names[kind], ...HI.names[kind]])];
}
