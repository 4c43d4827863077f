"""The base of every stored value of the core: frozen, closed, JSON bytes both ways.

Profiles live in a Faust table whose changelog is written only when a key is
reassigned, so a value changed in place would be lost on restart: values are
frozen and every change builds a new one. Unknown fields are rejected (unlike
inbound events) because the core is the only writer of these values; a field
it does not know means a newer version wrote it, and guessing would be worse
than failing loudly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import orjson
from pydantic import BaseModel, ConfigDict

_set = object.__setattr__

__all__ = ["FrozenModel"]


class FrozenModel(BaseModel):
    """A frozen pydantic model that refuses unknown fields and has a byte form.

    ``to_bytes`` writes ``model_dump(mode="json")`` with orjson: ``Decimal``
    as a string (exact), datetimes as RFC 3339 UTC, floats in their shortest
    round-tripping form, so ``from_bytes(to_bytes(x)) == x``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def updated(self, update: Mapping[str, object]) -> Self:
        """Return a copy with ``update``'s fields replaced, not validated: ``model_copy(update=)``.

        The same object ``model_copy`` builds (fields in the same order, the
        updated names added to the fields set), without its three
        ``copy.copy`` calls: this model forbids extra fields and has no
        private attributes, so both are None. The core rebuilds a profile
        several times per event, and ``model_copy`` was a tenth of its time.
        """
        cls = type(self)
        copied = cls.__new__(cls)
        _set(copied, "__dict__", {**self.__dict__, **update})
        _set(copied, "__pydantic_extra__", None)
        _set(copied, "__pydantic_fields_set__", self.__pydantic_fields_set__ | update.keys())
        _set(copied, "__pydantic_private__", None)
        return copied

    @classmethod
    def from_valid(cls, **fields: object) -> Self:
        """Build from every field's final value, not validated: the caller vouches for them.

        For hot paths whose values already are what validation would return
        (the same types, UTC datetimes, in-range numbers), so the instance is
        equal to the validated one and serializes to the same bytes; the
        fields set is every field, as when all are passed to the constructor.
        Callers check the cheap preconditions and validate otherwise.
        """
        names = cls.__pydantic_fields__
        if fields.keys() != names.keys():
            raise TypeError(f"{cls.__name__}.from_valid needs exactly the fields {list(names)}")
        built = cls.__new__(cls)
        _set(built, "__dict__", {name: fields[name] for name in names})
        _set(built, "__pydantic_extra__", None)
        _set(built, "__pydantic_fields_set__", set(names))
        _set(built, "__pydantic_private__", None)
        return built

    def to_bytes(self) -> bytes:
        """Serialize to compact UTF-8 JSON."""
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        """Read back what :meth:`to_bytes` wrote (validated)."""
        return cls.model_validate_json(raw)
