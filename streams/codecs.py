"""How table values travel through Faust's changelogs.

Profiles, deadlines and label buffers serialize themselves (orjson, exact
Decimals); this codec is the thin adapter Faust calls when it writes a
changelog record and when it restores a table from one, so a restored value
is the value that was stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from faust.serializers.codecs import Codec


class StoredCodec(Codec):
    """Faust codec for values with ``to_bytes()``, read back by ``loads``."""

    def __init__(self, loads: Callable[[bytes], Any], kind: type | tuple[type, ...]) -> None:
        super().__init__()
        self._read = loads
        self._kind = kind

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, self._kind):
            raise TypeError(f"this table stores {self._kind}, not {type(obj).__name__}")
        return bytes(cast(Any, obj).to_bytes())

    def _loads(self, s: bytes) -> Any:
        return self._read(s)
