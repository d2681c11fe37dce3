/** The verifier: the simulator oracle and Gemini behind one interface. See docs/verifier.md. */
export * from './types';
export * from './errors';
export { createOracleVerifier, judgeSubtask, readSubtasks, type OracleGoal, type OracleVerifierOptions, type SubtaskReading } from './oracle';
export { createGeminiVerifier, parseVerifierAnswer, type GeminiVerifierOptions } from './gemini';
export { buildVerifierPrompt, describeState, VERIFIER_ANSWER_JSON_SCHEMA, VERIFIER_PROMPT_MARKERS, VERIFIER_PROMPT_VERSION, VERIFIER_SYSTEM_INSTRUCTION } from './prompt';
