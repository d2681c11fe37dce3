import type { MetricMeter } from '@temporalio/common';
import { countGeminiUsage, type GeminiUse } from '../../data-schemas/metrics';
import type { TokenUsage } from '../../data-schemas/relabel';

/** Prices in USD per million tokens; thinking tokens are billed as output. */
export interface GeminiPrice {
  inputUsdPerMTok: number;
  outputUsdPerMTok: number;
}

/**
 * Paid-tier list prices of the Gemini API (text/image input, standard tier). gemini-2.5-pro costs
 * more above 200k prompt tokens; a labelling prompt is a few thousand, so only the lower tier is
 * listed. Model names match by longest prefix, so dated variants such as
 * `gemini-2.5-flash-preview-09-2025` take their family's price.
 */
export const GEMINI_PRICES: Readonly<Record<string, GeminiPrice>> = {
  'gemini-2.5-flash': { inputUsdPerMTok: 0.3, outputUsdPerMTok: 2.5 },
  'gemini-2.5-flash-lite': { inputUsdPerMTok: 0.1, outputUsdPerMTok: 0.4 },
  'gemini-2.5-pro': { inputUsdPerMTok: 1.25, outputUsdPerMTok: 10 },
};

/**
 * The price of `model`. A model not in the table is charged at gemini-2.5-flash prices, so that
 * budgets still count spend; pass `pricing` to the labeler for exact figures of other models.
 */
export function priceFor(model: string): { price: GeminiPrice; known: boolean } {
  const family = Object.keys(GEMINI_PRICES)
    .filter((name) => model === name || model.startsWith(`${name}-`))
    .sort((a, b) => b.length - a.length)[0];
  return family ? { price: GEMINI_PRICES[family]!, known: true } : { price: GEMINI_PRICES['gemini-2.5-flash']!, known: false };
}

export function usageCost(inputTokens: number, outputTokens: number, price: GeminiPrice): TokenUsage {
  return {
    inputTokens,
    outputTokens,
    // Rounded to a nano-dollar so histories and reports do not show float noise.
    costUsd: Math.round((inputTokens * price.inputUsdPerMTok + outputTokens * price.outputUsdPerMTok) * 1000) / 1e9,
  };
}

/** Counts one answered call on the worker's metrics: its tokens, and its spend at `model`'s list price. */
export function countGeminiCall(meter: MetricMeter, model: string, use: GeminiUse, tokens: { inputTokens: number; outputTokens: number }): void {
  countGeminiUsage(meter, { model, use }, usageCost(tokens.inputTokens, tokens.outputTokens, priceFor(model).price));
}
