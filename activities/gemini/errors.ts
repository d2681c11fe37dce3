import { ApiError, FinishReason, type GenerateContentResponse, type SafetyRating } from '@google/genai';
import { ApplicationFailure } from '@temporalio/common';

import { GeminiFailure } from '../../data-schemas/relabel';

export { GeminiFailure, FATAL_GEMINI_FAILURES, isFatalGeminiFailure } from '../../data-schemas/relabel';

export const AUTH_ADVICE = "check GEMINI_API_KEY in the worker's environment";

/** Google's error body: `{ error: { code, message, status, details: [{ '@type', ... }] } }`. */
interface GoogleRpcError {
  code?: number;
  message?: string;
  status?: string;
  details?: { '@type'?: string; retryDelay?: string; reason?: string; violations?: { quotaId?: string; quotaMetric?: string }[] }[];
}

const RETRY_INFO = 'type.googleapis.com/google.rpc.RetryInfo';
const QUOTA_FAILURE = 'type.googleapis.com/google.rpc.QuotaFailure';

/**
 * The per-day quota a 429 names, if any (QuotaFailure violation with a quotaId such as
 * `GenerateRequestsPerDayPerProjectPerModel-FreeTier`). Google still attaches a RetryInfo of a few
 * seconds to these, but the quota only comes back at its daily reset.
 */
function perDayQuota(body: GoogleRpcError | undefined): string | undefined {
  const violations = (body?.details ?? []).filter((d) => d['@type'] === QUOTA_FAILURE).flatMap((d) => d.violations ?? []);
  return violations.find((v) => /PerDay/i.test(v.quotaId ?? '') || /per_day/i.test(v.quotaMetric ?? ''))?.quotaId;
}

function parseErrorBody(message: string): GoogleRpcError | undefined {
  try {
    const body = JSON.parse(message) as { error?: unknown };
    return typeof body.error === 'object' && body.error !== null ? body.error : undefined;
  } catch {
    return undefined;
  }
}

/** Parses a protobuf Duration in JSON form ("17s", "0.5s", "1.250s") into milliseconds. */
export function parseRetryDelayMs(delay: string | undefined): number | undefined {
  const m = delay?.match(/^(\d+(?:\.\d+)?)s$/);
  return m ? Math.round(Number(m[1]) * 1000) : undefined;
}

/**
 * Removes anything that could be the API key: the key itself when known, `key=` query parameters
 * (the SDK may echo a URL) and strings shaped like Google API keys.
 */
export function scrubSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  return out.replace(/([?&]key=)[^&\s"']+/gi, '$1[redacted]').replace(/AIza[0-9A-Za-z_-]{20,}/g, '[redacted]');
}

function isNetworkError(err: Error): boolean {
  // fetch rejects with TypeError('fetch failed') for refused/reset connections and DNS errors,
  // and with an AbortError/TimeoutError when the SDK's per-attempt timeout fires.
  return err.name === 'AbortError' || err.name === 'TimeoutError' || (err instanceof TypeError && /fetch failed|network|socket/i.test(err.message));
}

function networkDetail(err: Error): string {
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return 'the request timed out';
  const cause = (err as { cause?: unknown }).cause;
  const code = typeof cause === 'object' && cause !== null ? (cause as { code?: unknown }).code : undefined;
  return `${err.message}${typeof code === 'string' ? ` (${code})` : ''}`;
}

export interface ClassifyContext {
  /** The model called, named in the unknown-model message. */
  model?: string;
  /** Values that must never appear in a message (the API key). */
  secrets?: readonly string[];
}

/**
 * Turns an error thrown by the @google/genai client into an ApplicationFailure whose type is one of
 * `GeminiFailure`. The SDK's `ApiError` carries the HTTP status and, as its message, Google's JSON
 * error body. Messages are scrubbed of the API key (docs/design.md, "Secrets stay out of histories"), and no raw error is
 * attached as `cause`, because causes are serialized into workflow histories unscrubbed.
 */
export function classifyGeminiError(err: unknown, context: ClassifyContext = {}): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const scrub = (text: string): string => scrubSecrets(text, context.secrets);
  const model = context.model ?? 'the configured model';

  if (err instanceof ApiError) {
    const body = parseErrorBody(err.message);
    const status = body?.status ?? '';
    const googleMessage = scrub(body?.message ?? err.message).slice(0, 500);
    const what = `Gemini API ${err.status}${status ? ` ${status}` : ''}: ${googleMessage.replace(/\.$/, '')}`;
    const reasons = (body?.details ?? []).map((d) => d.reason).filter((r): r is string => typeof r === 'string');

    // Google answers an invalid key with 400 INVALID_ARGUMENT, not 401: "API key not valid" with
    // ErrorInfo API_KEY_INVALID, or "API Key not found" with or without that ErrorInfo.
    const badKey = reasons.includes('API_KEY_INVALID') || /API key not valid|API key not found|API key expired|API_KEY_INVALID/i.test(googleMessage);
    if (err.status === 401 || err.status === 403 || badKey) {
      return ApplicationFailure.create({ message: `${what}; ${AUTH_ADVICE}`, type: GeminiFailure.Auth, nonRetryable: true });
    }
    if (err.status === 429) {
      const daily = perDayQuota(body);
      if (daily !== undefined) {
        // Retrying every few seconds until the daily reset only burns attempts and log lines: stop, and
        // let the researcher re-run after the reset (finished work is kept) or raise the quota.
        return ApplicationFailure.create({
          message: `${what}; the per-day quota ${daily} is exhausted until its daily reset (midnight Pacific time): re-run after the reset or raise the quota`,
          type: GeminiFailure.QuotaExhausted,
          nonRetryable: true,
        });
      }
      // Without RetryInfo the retry policy's own backoff applies.
      const retryInfo = body?.details?.find((d) => d['@type'] === RETRY_INFO);
      const delayMs = parseRetryDelayMs(retryInfo?.retryDelay);
      return ApplicationFailure.create({
        message: `${what}${delayMs !== undefined ? ` (server asks to retry in ${retryInfo?.retryDelay})` : ''}`,
        type: GeminiFailure.RateLimited,
        nonRetryable: false,
        ...(delayMs !== undefined && { nextRetryDelay: delayMs }),
      });
    }
    if (err.status === 404) {
      return ApplicationFailure.create({
        message: `${what}; model ${JSON.stringify(model)} is unknown to the Gemini API or does not support generateContent: choose another model in the labeler input (e.g. gemini-2.5-flash)`,
        type: GeminiFailure.UnknownModel,
        nonRetryable: true,
      });
    }
    // 408 request timeout and 499 CANCELLED are transient despite being 4xx.
    if (err.status >= 500 || err.status === 408 || err.status === 499) {
      return ApplicationFailure.create({ message: what, type: GeminiFailure.Unavailable, nonRetryable: false });
    }
    return ApplicationFailure.create({
      message: `${what}; the request was rejected as malformed, which retrying cannot fix (check the model name, the prompt size and the generation config)`,
      type: GeminiFailure.BadRequest,
      nonRetryable: true,
    });
  }

  if (err instanceof Error && isNetworkError(err)) {
    return ApplicationFailure.create({ message: scrub(`Gemini API unreachable: ${networkDetail(err)}`), type: GeminiFailure.Network, nonRetryable: false });
  }
  // Anything else (an SDK bug, an unexpected response shape) is left to the retry policy, which
  // bounds it; the type still says where it came from.
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return ApplicationFailure.create({ message: scrub(`Gemini call failed: ${message}`), type: GeminiFailure.Unavailable, nonRetryable: false });
}

/**
 * Finish reasons that mean a safety, policy or recitation filter withheld the answer: retrying the
 * same request is withheld again. The one list every Gemini caller checks (through contentBlock).
 */
export const BLOCKED_FINISH_REASONS: ReadonlySet<string> = new Set<string>([
  FinishReason.SAFETY,
  FinishReason.PROHIBITED_CONTENT,
  FinishReason.BLOCKLIST,
  FinishReason.SPII,
  FinishReason.RECITATION,
  FinishReason.IMAGE_SAFETY,
  FinishReason.IMAGE_PROHIBITED_CONTENT,
  FinishReason.IMAGE_RECITATION,
]);

/** Why Gemini withheld an answer: the prompt was blocked (`promptFeedback.blockReason`) or the answer was (a BLOCKED_FINISH_REASONS finish). */
export interface ContentBlock {
  where: 'prompt' | 'answer';
  /** The blockReason or finishReason, as Google names it. */
  reason: string;
  /** A sentence naming the reason and the blocked safety categories, if any. */
  description: string;
}

function blockedCategories(ratings: SafetyRating[] | undefined): string {
  const blocked = (ratings ?? []).filter((r) => r.blocked).map((r) => `${r.category ?? 'unknown'}${r.probability ? ` (${r.probability})` : ''}`);
  return blocked.length > 0 ? `; blocked categories: ${blocked.join(', ')}` : '';
}

/** The content block of a response (first candidate), or undefined when Gemini did not withhold it. */
export function contentBlock(response: GenerateContentResponse): ContentBlock | undefined {
  const blockReason = response.promptFeedback?.blockReason;
  if (blockReason) {
    return {
      where: 'prompt',
      reason: blockReason,
      description: `the prompt was blocked by Gemini's safety filter (blockReason ${blockReason}${blockedCategories(response.promptFeedback?.safetyRatings)})`,
    };
  }
  const candidate = response.candidates?.[0];
  const finish = candidate?.finishReason;
  if (finish && BLOCKED_FINISH_REASONS.has(finish)) {
    return { where: 'answer', reason: finish, description: `the answer was withheld by Gemini (finishReason ${finish}${blockedCategories(candidate?.safetyRatings)})` };
  }
  return undefined;
}
