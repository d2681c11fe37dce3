import { workflowQueue } from '../../data-schemas/activity-contract';
import {
  RelabelTrajectoryInput,
  ZERO_USAGE,
  type LabelOutcome,
  type LabelProblemKind,
  type RelabelTrajectoryResult,
  type TokenUsage,
  RelabelCpuActivities,
  RelabelGeminiActivities,
  RelabelPresets,
} from '../../data-schemas/relabel';
import { proxyFor } from '../activity-proxy';
import { parseWorkflowInput } from '../input';
import { VlaStage, upsertKeywords } from '../search-attributes';

const cpu = proxyFor(RelabelCpuActivities, workflowQueue('cpu'), RelabelPresets.trajectoryStep);

export function addUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  return { inputTokens: a.inputTokens + b.inputTokens, outputTokens: a.outputTokens + b.outputTokens, costUsd: a.costUsd + b.costUsd };
}

/**
 * One trajectory, D_rob -> D_lan: skip if done -> label (re-prompting with the specific problem up
 * to `maxReprompts` times) -> build and validate the record from the real actions -> write it
 * create-if-absent, or quarantine it with the reason.
 */
export async function relabelTrajectory(rawInput: unknown): Promise<RelabelTrajectoryResult> {
  const input = parseWorkflowInput('relabelTrajectory', RelabelTrajectoryInput, rawInput);
  upsertKeywords([{ key: VlaStage, value: 'relabel-trajectory' }]);
  const { datasetUri, trajectoryId, outputUri, labeler } = input;

  const existing = await cpu.relabelStatus({ outputUri, trajectoryId });
  if (existing !== 'pending') {
    return { trajectoryId, status: 'skipped', reason: `already ${existing}`, attempts: 0, usage: ZERO_USAGE };
  }

  const gemini = proxyFor(RelabelGeminiActivities, input.geminiTaskQueue, RelabelPresets.geminiCall);

  let usage = ZERO_USAGE;
  const problems: { kind: LabelProblemKind; problem: string }[] = [];
  for (let attempt = 0; attempt <= input.maxReprompts; attempt++) {
    const outcome: LabelOutcome =
      labeler.name === 'gemini'
        ? await gemini.labelGemini({ datasetUri, trajectoryId, model: labeler.model, feedback: problems.map((p) => p.problem) })
        : await cpu.labelHeuristic({ datasetUri, trajectoryId });
    usage = addUsage(usage, outcome.usage);
    if (outcome.ok) {
      const written = await cpu.writeRelabelRecord({ datasetUri, trajectoryId, outputUri, labeler, segments: outcome.segments, aggregation: input.aggregation });
      return { trajectoryId, status: 'done', recordUri: written.recordUri, attempts: attempt + 1, usage };
    }
    problems.push({ kind: outcome.kind, problem: outcome.problem });
  }
  const reason = `${problems.length} answers rejected; last: ${problems.at(-1)?.kind ?? 'unknown'}: ${problems.at(-1)?.problem ?? ''}`;
  await cpu.writeQuarantine({ outputUri, trajectoryId, labeler, reason, attempts: problems });
  return { trajectoryId, status: 'quarantined', reason, attempts: problems.length, usage };
}
