"""The JSON-lines loop: a reader thread parses stdin into a queue; the main thread gathers batches,
generates and writes answers by id."""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import sys
import threading
import time
from typing import IO, Any, Callable

from ..parent_watch import die_with_parent, watch_parent
from .protocol import EOF_MARK, Gatherer, ProtocolError, Request, error_answer, parse_request


class Writer:
    def __init__(self, out: IO[str]):
        self.out = out
        self.lock = threading.Lock()

    def __call__(self, obj: dict) -> None:
        line = json.dumps(obj, ensure_ascii=False, allow_nan=False)
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()


def read_requests(lines: IO[str], sink: "queue.Queue[Any]", write: Callable[[dict], None], prepare: Callable[[Request], None]) -> None:
    """Parses each line; bad ones are answered at once (bad_request), good ones are prepared (images
    decoded) and queued. Puts EOF_MARK at the end of input."""
    try:
        for raw in lines:
            raw = raw.strip()
            if not raw:
                continue
            try:
                obj = json.loads(raw)
            except ValueError as e:
                write(error_answer(None, "bad_request", f"not a JSON line: {e}"))
                continue
            try:
                req = parse_request(obj)
                prepare(req)
            except ProtocolError as e:
                rid = e.request_id if e.request_id is not None else (obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None)
                write(error_answer(rid, "bad_request", str(e)))
                continue
            sink.put(req)
    finally:
        sink.put(EOF_MARK)


def serve(
    lines: IO[str],
    write: Callable[[dict], None],
    generate: Callable[[list[Request]], list[dict]],
    prepare: Callable[[Request], None] = lambda r: None,
    max_batch: int = 8,
    window_s: float = 0.005,
    log: Callable[[str], None] = lambda m: None,
) -> int:
    """Runs until the input ends and every request is answered. ``generate`` answers a batch; when it
    raises, each request of the batch is retried alone so one bad request fails only itself."""
    q: "queue.Queue[Any]" = queue.Queue()
    reader = threading.Thread(target=read_requests, args=(lines, q, write, prepare), name="stdin-reader", daemon=True)
    reader.start()
    gatherer = Gatherer(q, max_batch=max_batch, window_s=window_s)
    while True:
        batch = gatherer.next_batch()
        if batch is None:
            return 0
        t0 = time.monotonic()
        try:
            answers = generate(batch)
        except Exception as e:  # noqa: BLE001 - isolate the failing request
            if len(batch) == 1:
                write(error_answer(batch[0].id, *_classify(e)))
                continue
            log(f"batch of {len(batch)} failed ({type(e).__name__}: {e}); answering its requests one by one")
            for r in batch:
                try:
                    for a in generate([r]):
                        write(a)
                except Exception as e1:  # noqa: BLE001
                    write(error_answer(r.id, *_classify(e1)))
            continue
        log(f"batch of {len(batch)} answered in {(time.monotonic() - t0) * 1000:.0f} ms")
        for a in answers:
            write(a)


def _classify(e: BaseException) -> tuple[str, str]:
    from .engine import BadInput

    if isinstance(e, BadInput):
        return "bad_request", str(e)
    text = f"{type(e).__name__}: {e}"
    if "out of memory" in str(e).lower():
        return "server", f"out of memory while generating ({text}); lower --max-batch-size or maxNewTokens"
    return "server", text


def _watch_parent(write_log: Callable[[str], None]) -> None:
    """Exits once the process that started us (VLA_PARENT_PID) is gone: we run in our own process group."""

    def gone(parent: int) -> None:
        write_log(f"the parent process {parent} is gone: exiting")
        os._exit(0)

    # The kernel's signal is immediate and GIL-free; the polling thread covers other platforms.
    die_with_parent()
    watch_parent(gone)


def main(argv: list[str] | None = None) -> int:
    from . import engine

    parser = argparse.ArgumentParser(prog="python -m vla_py.infer", description="VQA inference over JSON lines on stdin/stdout")
    parser.add_argument("--base-model", required=True, help="model directory (or a hub id the machine can reach)")
    parser.add_argument("--adapter", default=None, help="peft LoRA adapter directory")
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--batch-window-ms", type=float, default=5.0)
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    args = parser.parse_args(argv)

    out = Writer(sys.stdout)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    _watch_parent(engine.log)
    try:
        loaded = engine.load(args.base_model, args.adapter, device=args.device, dtype=args.dtype)
    except engine.LoadError as e:
        out({"ready": False, "error": {"code": e.code, "message": str(e)}})
        return 2
    except Exception as e:  # noqa: BLE001 - the Node side gets a message, not a traceback
        out({"ready": False, "error": {"code": "server", "message": f"loading {args.base_model} failed: {type(e).__name__}: {e}"}})
        return 2
    engine.log(f"loaded {args.base_model}{' + ' + args.adapter if args.adapter else ''} on {loaded.device} ({loaded.dtype})")
    out({"ready": True, "model": args.base_model, "adapter": args.adapter, "adapterBase": loaded.adapter_base, "device": loaded.device, "dtype": loaded.dtype, "maxBatchSize": args.max_batch_size})

    def prepare(r: Request) -> None:
        if r.action_tokens and loaded.action_mapping is None:
            what = f"the adapter {args.adapter} has no action_tokens.json" if args.adapter else "no adapter is loaded"
            raise ProtocolError(f"actionTokens: {what} (not an action-tokens adapter)", r.id)
        try:
            r.payload = engine.decode_images(r)
        except engine.BadInput as e:
            raise ProtocolError(str(e), r.id) from None

    return serve(
        sys.stdin,
        out,
        lambda batch: engine.generate_batch(loaded, batch),
        prepare=prepare,
        max_batch=args.max_batch_size,
        window_s=args.batch_window_ms / 1000,
        log=engine.log,
    )
