"""The base of every stored value of the core: frozen, closed, JSON bytes both ways.

Profiles live in a Faust table whose changelog is written only when a key is
reassigned, so a value changed in place would be lost on restart: values are
frozen and every change builds a new one. Unknown fields are rejected (unlike
inbound events) because the core is the only writer of these values; a field
it does not know means a newer version wrote it, and guessing would be worse
than failing loudly.
"""

from __future__ import annotations

from typing import Self

import orjson
from pydantic import BaseModel, ConfigDict

__all__ = ["FrozenModel"]


class FrozenModel(BaseModel):
    """A frozen pydantic model that refuses unknown fields and has a byte form.

    ``to_bytes`` writes ``model_dump(mode="json")`` with orjson: ``Decimal``
    as a string (exact), datetimes as RFC 3339 UTC, floats in their shortest
    round-tripping form, so ``from_bytes(to_bytes(x)) == x``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_bytes(self) -> bytes:
        """Serialize to compact UTF-8 JSON."""
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        """Read back what :meth:`to_bytes` wrote (validated)."""
        return cls.model_validate_json(raw)
