"""What crosses from TypeScript into Python, validated against one contract.

The JSON Schemas in ``vla_py/schemas/`` are generated from the zod schemas in
data-schemas/python-border.ts by ``npm run schemas`` (never edited by hand; a unit test fails when
they drift). Python checks its inputs with them and declares no defaults or rules of its own.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, Callable

import fastjsonschema

SCHEMA_DIR = Path(__file__).parent / "schemas"


class BorderError(ValueError):
    """Data that does not match its schema; the message names the field (``config.lora.rank ...``)."""


@functools.cache
def _validator(name: str) -> Callable[[Any], Any]:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    # use_default=False: the schemas carry no defaults, and nothing may be filled in on this side.
    return fastjsonschema.compile(schema, use_default=False)


def _non_finite(value: Any, path: str) -> str | None:
    """JSON has no NaN or Infinity, but Python's json module reads them: the first one's path."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        return next((p for k, v in value.items() if (p := _non_finite(v, f"{path}.{k}")) is not None), None)
    if isinstance(value, list):
        return next((p for i, v in enumerate(value) if (p := _non_finite(v, f"{path}[{i}]")) is not None), None)
    return None


@functools.cache
def _branch_validators(name: str) -> dict[tuple[str, Any], Callable[[Any], Any]]:
    """A discriminated union's branches (a top-level ``oneOf`` whose members each fix one property with
    ``const``), by (property, value): a failed request is then named by its own branch's rule."""
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    branches: dict[tuple[str, Any], Callable[[Any], Any]] = {}
    for branch in schema.get("oneOf", []):
        for key, prop in branch.get("properties", {}).items():
            if "const" in prop:
                branches[(key, prop["const"])] = fastjsonschema.compile(branch, use_default=False)
    return branches


def validate(schema: str, data: Any, root: str) -> Any:
    """Checks ``data`` against ``schemas/<schema>.schema.json``; a BorderError names the field under ``root``."""
    bad = _non_finite(data, root)
    if bad is not None:
        raise BorderError(f"{bad} must be a finite number")
    try:
        _validator(schema)(data)
    except fastjsonschema.JsonSchemaValueException as e:
        message = e.message
        if isinstance(data, dict):
            branch = next((v for (k, c), v in _branch_validators(schema).items() if data.get(k) == c), None)
            if branch is not None:
                try:
                    branch(data)
                except fastjsonschema.JsonSchemaValueException as precise:
                    message = precise.message
        raise BorderError(root + message[len("data") :] if message.startswith("data") else f"{root}: {message}") from None
    return data
