"""VQA inference on a local base model (+ optional peft LoRA adapter), as a JSON-lines child process.

    python -m vla_py.infer --base-model DIR [--adapter DIR] [--max-batch-size 8] [--batch-window-ms 5]

Protocol (one JSON object per line; stdout carries nothing else, logs go to stderr), declared once in
data-schemas/python-border.ts (InferenceRequestLine, InferenceResponseLine):

* first line, after loading: ``{"ready": true, "model": ..., "adapter": ..., "device": ..., "dtype": ...}``,
  or ``{"ready": false, "error": {"code", "message"}}`` and exit code 2 when loading fails
  (codes ``not_found``, ``adapter_mismatch``, ``bad_request``, ``server``).
* request (stdin): ``{"id": "...", "prompt": "...", "images": ["<base64>", ...], "maxNewTokens": 16,
  "temperature": 0, "topP": 0.9 | null, "logprobs": false, "actionTokens": false}``, every field required
  (checked against ``vla_py/schemas/inference-request.schema.json``); ``actionTokens`` decodes the
  answer's action-token ids back to digits with the adapter's ``action_tokens.json`` (VLM2VLA-AT adapters)
* answer: ``{"id", "text", "inputTokens", "outputTokens", "batchSize", "truncated", "logprobs"?}`` or
  ``{"id", "error": {"code", "message"}}`` (``id`` is null when the line had no usable id).
  ``truncated``: generation reached ``maxNewTokens`` without an end-of-sequence token.

Requests are answered by id, not in order: the server gathers up to ``--max-batch-size`` pending requests
with the same sampling settings (whatever arrived within ``--batch-window-ms`` of the first) into one
left-padded batch. Temperature 0 is greedy decoding. EOF on stdin: pending requests are answered, then exit 0.
"""
