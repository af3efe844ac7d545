"""Helpers of the remote-model tests (importable as ``kserve_support``)."""

from __future__ import annotations


def backend_table(url: str, model: str, **options: object) -> str:
    """A Lua ``backend = {...}`` table."""
    items = {"kind": "kserve", "url": url, "model": model, "version": "1", "timeout_ms": 5000, **options}
    return "{ " + ", ".join(f"{k} = {v!r}".replace("'", '"') for k, v in items.items()) + " }"
