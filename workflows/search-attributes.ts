import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** The namespace's custom search attributes (registered by `vla dev up` and the test setup). */
export const VlaDataset = defineSearchAttributeKey('VlaDataset', SearchAttributeType.KEYWORD);
export const VlaStage = defineSearchAttributeKey('VlaStage', SearchAttributeType.KEYWORD);
export const VlaModel = defineSearchAttributeKey('VlaModel', SearchAttributeType.KEYWORD);
/** The nightly evaluation's retention gate: `passed` or `failed` (retention below the threshold). */
export const VlaRetentionGate = defineSearchAttributeKey('VlaRetentionGate', SearchAttributeType.KEYWORD);
/** A task queue the workflow waits on that no worker polls (a misspelled queue, a stopped worker); cleared once one polls. */
export const VlaWaitingOn = defineSearchAttributeKey('VlaWaitingOn', SearchAttributeType.KEYWORD);
