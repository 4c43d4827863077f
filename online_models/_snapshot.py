"""Snapshot bytes: a fixed header, then a pickle (River's supported persistence).

Only bytes this package wrote are restored: snapshots come from Nudge's own
trainer through Nudge's own topic. The header is checked before unpickling,
so a message from the wrong topic (or a truncated one) is refused with
:class:`SnapshotError` rather than unpickled.
"""

from __future__ import annotations

import pickle
from typing import Any

__all__ = ["SnapshotError", "dump", "load"]


class SnapshotError(ValueError):
    """The bytes are not a snapshot this package can restore."""


def dump(header: bytes, state: dict[str, Any]) -> bytes:
    """Write ``state`` after ``header``."""
    return header + pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def load(header: bytes, blob: bytes, fmt: int) -> dict[str, Any]:
    """Read back what :func:`dump` wrote with ``header``, checking its ``format`` is ``fmt``."""
    if not blob.startswith(header):
        raise SnapshotError("not a Nudge snapshot of this kind (bad header)")
    try:
        # Trusted input only (see the module docstring); the header check
        # above refuses anything else before it reaches pickle.
        state = pickle.loads(blob[len(header) :])  # noqa: S301
    except Exception as error:
        raise SnapshotError(f"unreadable snapshot: {error}") from error
    if not isinstance(state, dict):
        raise SnapshotError("a snapshot must hold a dict")
    if state.get("format") != fmt:
        raise SnapshotError(f"unsupported snapshot format {state.get('format')!r}")
    return state
