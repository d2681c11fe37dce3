/**
 * TextVQA accuracy as lmms-eval computes it (lmms_eval/tasks/textvqa/utils.py
 * `textvqa_process_results`, lmms_eval/tasks/_task_utils/vqa_eval_metric.py
 * `EvalAIAnswerProcessor`, commit 75571cfe; the EvalAI / VQA v2 rule).
 *
 * Normalisation of the response and of each of the 10 human answers: lower-case; drop "," and "?";
 * "'s" → " 's"; newlines and tabs to spaces; strip; each of `; / [ ] " { } ( ) = + \ _ - > < @ ` , ? !`
 * is deleted where it touches a space in the text and replaced by a space otherwise; periods not
 * followed by a digit are deleted (the first 32 only: lmms-eval passes `re.UNICODE` as `count`);
 * split on whitespace; number words zero..ten and "none" to digits; articles a/an/the dropped;
 * contractions restored ("dont" → "don't"); joined with single spaces.
 *
 * Score: for each of the 10 leave-one-out subsets of 9 answers, min(1, matches / 3); the mean of the
 * 10. So 3 or more matching answers give 1, 2 give 0.6, 1 gives 0.3.
 */
import { pyLower, pySplit, pyStrip } from './py';

const CONTRACTIONS: Record<string, string> = {
  aint: "ain't", arent: "aren't", cant: "can't", couldve: "could've", couldnt: "couldn't",
  "couldn'tve": "couldn't've", "couldnt've": "couldn't've", didnt: "didn't", doesnt: "doesn't",
  dont: "don't", hadnt: "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", hasnt: "hasn't",
  havent: "haven't", hed: "he'd", "hed've": "he'd've", "he'dve": "he'd've", hes: "he's",
  howd: "how'd", howll: "how'll", hows: "how's", "Id've": "I'd've", "I'dve": "I'd've", Im: "I'm",
  Ive: "I've", isnt: "isn't", itd: "it'd", "itd've": "it'd've", "it'dve": "it'd've", itll: "it'll",
  "let's": "let's", maam: "ma'am", mightnt: "mightn't", "mightnt've": "mightn't've",
  "mightn'tve": "mightn't've", mightve: "might've", mustnt: "mustn't", mustve: "must've",
  neednt: "needn't", notve: "not've", oclock: "o'clock", oughtnt: "oughtn't", "ow's'at": "'ow's'at",
  "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", shant: "shan't", "shed've": "she'd've",
  "she'dve": "she'd've", "she's": "she's", shouldve: "should've", shouldnt: "shouldn't",
  "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": 'somebodyd',
  "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", somebodyll: "somebody'll",
  somebodys: "somebody's", someoned: "someone'd", "someoned've": "someone'd've",
  "someone'dve": "someone'd've", someonell: "someone'll", someones: "someone's",
  somethingd: "something'd", "somethingd've": "something'd've", "something'dve": "something'd've",
  somethingll: "something'll", thats: "that's", thered: "there'd", "thered've": "there'd've",
  "there'dve": "there'd've", therere: "there're", theres: "there's", theyd: "they'd",
  "theyd've": "they'd've", "they'dve": "they'd've", theyll: "they'll", theyre: "they're",
  theyve: "they've", twas: "'twas", wasnt: "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
  weve: "we've", werent: "weren't", whatll: "what'll", whatre: "what're", whats: "what's",
  whatve: "what've", whens: "when's", whered: "where'd", wheres: "where's", whereve: "where've",
  whod: "who'd", "whod've": "who'd've", "who'dve": "who'd've", wholl: "who'll", whos: "who's",
  whove: "who've", whyll: "why'll", whyre: "why're", whys: "why's", wont: "won't",
  wouldve: "would've", wouldnt: "wouldn't", "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've",
  yall: "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
  "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", youd: "you'd", "youd've": "you'd've",
  "you'dve": "you'd've", youll: "you'll", youre: "you're", youve: "you've",
};

const NUMBER_MAP: Record<string, string> = {
  none: '0', zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5',
  six: '6', seven: '7', eight: '8', nine: '9', ten: '10',
};
const ARTICLES = new Set(['a', 'an', 'the']);
const PUNCTUATIONS = [';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'];
const COMMA_STRIP = /(?<=\p{Nd}),+(?=\p{Nd})/u;
/** Python's `(?!<=\d)(\.)(?!\d)`: the first lookahead never fails before a ".", so: "." not before a digit. */
const PERIOD_STRIP = /\.(?!\p{Nd})/gu;
/** `re.sub(pattern, "", text, re.UNICODE)` passes 32 as the replacement count. */
const PERIOD_STRIP_COUNT = 32;

const own = (table: Record<string, string>, key: string): string | undefined =>
  Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;

function processPunctuation(inText: string): string {
  let out = inText;
  const commaBetweenDigits = COMMA_STRIP.test(inText);
  for (const p of PUNCTUATIONS) {
    if (inText.includes(`${p} `) || inText.includes(` ${p}`) || commaBetweenDigits) out = out.replaceAll(p, '');
    else out = out.replaceAll(p, ' ');
  }
  let n = 0;
  return out.replace(PERIOD_STRIP, (m) => (n++ < PERIOD_STRIP_COUNT ? '' : m));
}

function processDigitArticle(inText: string): string {
  const words = pySplit(pyLower(inText))
    .map((w) => own(NUMBER_MAP, w) ?? w)
    .filter((w) => !ARTICLES.has(w))
    .map((w) => own(CONTRACTIONS, w) ?? w);
  return words.join(' ');
}

/** `EvalAIAnswerProcessor.__call__`. */
export function normalizeVqaAnswer(answer: string): string {
  let item = pyStrip(pyLower(answer).replaceAll(',', '').replaceAll('?', '').replaceAll("'s", " 's"));
  item = pyStrip(item.replaceAll('\n', ' ').replaceAll('\t', ' '));
  return processDigitArticle(processPunctuation(item));
}

/** VQA accuracy of one response against the human answers (0 when there are none). */
export function vqaAccuracy(response: string, answers: readonly string[]): number {
  if (answers.length === 0) return 0;
  const res = normalizeVqaAnswer(response);
  const gts = answers.map(normalizeVqaAnswer);
  let total = 0;
  for (let i = 0; i < gts.length; i++) {
    const matches = gts.filter((g, j) => j !== i && g === res).length;
    total += Math.min(1, matches / 3);
  }
  return total / gts.length;
}
