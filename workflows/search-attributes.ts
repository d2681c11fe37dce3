import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';
import { upsertSearchAttributes } from '@temporalio/workflow';
import { boundedSearchAttribute, boundedSearchAttributeList } from '../data-schemas/bounded';

/** The namespace's custom search attributes (registered by `vla dev up` and the test setup). */
export const VlaDataset = defineSearchAttributeKey('VlaDataset', SearchAttributeType.KEYWORD);
export const VlaStage = defineSearchAttributeKey('VlaStage', SearchAttributeType.KEYWORD);
export const VlaModel = defineSearchAttributeKey('VlaModel', SearchAttributeType.KEYWORD);
/** The nightly evaluation's retention gate: `passed` or `failed` (retention below the threshold). */
export const VlaRetentionGate = defineSearchAttributeKey('VlaRetentionGate', SearchAttributeType.KEYWORD);
/** A task queue the workflow waits on that no worker polls (a misspelled queue, a stopped worker); cleared once one polls. */
export const VlaWaitingOn = defineSearchAttributeKey('VlaWaitingOn', SearchAttributeType.KEYWORD);
/** The experiment's name: on the experiment workflow and on every stage workflow it starts. */
export const VlaExperiment = defineSearchAttributeKey('VlaExperiment', SearchAttributeType.KEYWORD);
/** The experiment's training variant names (the Web UI filters with `VlaVariants IN ("vlm2vla-at")`). */
export const VlaVariants = defineSearchAttributeKey('VlaVariants', SearchAttributeType.KEYWORD_LIST);
/** The experiment's state, an `ExperimentState` (data-schemas/experiment.ts): running, paused, completed, failed, cancelled, budget_exhausted. */
export const VlaState = defineSearchAttributeKey('VlaState', SearchAttributeType.KEYWORD);

/**
 * The one way workflows set search attributes: every value goes through `boundedSearchAttribute`,
 * so a long value derived from input (a URI, a model path) is kept readable and hashed instead of
 * getting the workflow terminated by the server's value-size limit. A null value unsets the key.
 */
export function upsertKeywords(pairs: { key: SearchAttributeKey<typeof SearchAttributeType.KEYWORD>; value: string | null }[]): void {
  upsertSearchAttributes(pairs.map(({ key, value }) => ({ key, value: value === null ? null : boundedSearchAttribute(value) })));
}

/**
 * `upsertKeywords` for a KeywordList: the values go through `boundedSearchAttributeList` (each one
 * bounded like `boundedSearchAttribute`, and the whole list kept under the server's size limit,
 * which counts the list, not each value). A null value unsets the key.
 */
export function upsertKeywordList(key: SearchAttributeKey<typeof SearchAttributeType.KEYWORD_LIST>, values: string[] | null): void {
  upsertSearchAttributes([{ key, value: values === null ? null : boundedSearchAttributeList(values) }]);
}
