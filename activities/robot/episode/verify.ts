import { Context } from '@temporalio/activity';
import { implement } from '../../../data-schemas/activity-contract';
import { RobotVerifierActivities, type ObservationRef, type VerdictRecord, type VerifyInput } from '../../../data-schemas/robot';
import { classified } from '../../failures';
import { countGeminiCall } from '../../gemini/pricing';
import type { ObjectStore } from '../../store/types';
import type { Task } from '../sim/tasks';
import type { World } from '../sim/world';
import { createGeminiVerifier, createOracleVerifier, type Verifier, type VerifierAnswer, type VerifierRequest } from '../verifier';

export type { VerifyInput };

async function request(store: ObjectStore, input: VerifyInput): Promise<VerifierRequest> {
  const [before, after] = await Promise.all([store.get(input.before.frameUri), store.get(input.after.frameUri)]);
  const frame = (bytes: Buffer, o: ObservationRef) => ({ image: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), mimeType: 'image/jpeg' as const, state: [...o.state] });
  return { instruction: input.instruction, subtasks: input.subtasks, subtaskIndex: input.subtaskIndex, before: frame(before, input.before), after: frame(after, input.after) };
}

const toRecord = (a: VerifierAnswer): VerdictRecord => ({
  decision: a.verdict.decision,
  reason: a.verdict.reason,
  by: a.verifier,
  promptVersion: a.promptVersion,
  raw: a.raw,
  latencyMs: a.latencyMs,
});

export async function verifyWithOracle(store: ObjectStore, input: VerifyInput, world: () => World, task: () => Task): Promise<VerdictRecord> {
  return toRecord(await createOracleVerifier({ world, task }).verify(await request(store, input)));
}

export interface GeminiVerifierEnv {
  apiKey?: string;
  baseUrl?: string;
}

const geminiVerifiers = new Map<string, Verifier>();

/** The Gemini verifier's activity (on the Gemini worker, where the key lives). */
export function createGeminiVerifyActivities(deps: { store: ObjectStore; gemini?: GeminiVerifierEnv }) {
  return implement(RobotVerifierActivities, 'gemini', {
    // Classified like every store-reading activity: a frame URI outside the store roots is not retried.
    verifyGemini: classified(async (input): Promise<VerdictRecord> => {
      let verifier = geminiVerifiers.get(input.model);
      if (!verifier) {
        verifier = createGeminiVerifier({ apiKey: deps.gemini?.apiKey ?? '', model: input.model, ...(deps.gemini?.baseUrl !== undefined && { baseUrl: deps.gemini.baseUrl }) });
        geminiVerifiers.set(input.model, verifier);
      }
      const answer = await verifier.verify(await request(deps.store, input));
      if (answer.usage) countGeminiCall(Context.current().metricMeter, input.model, 'verifier', answer.usage);
      return toRecord(answer);
    }),
  });
}
