"""How profile-table values travel through Faust's changelog.

Profiles and tombstones serialize themselves (orjson, exact Decimals); this
codec is the thin adapter Faust calls when it writes a changelog record and
when it restores a table from one, so a restored profile is the same value
that was stored.
"""

from __future__ import annotations

from typing import Any

from faust.serializers.codecs import Codec

from streams.core.profile import Profile, Tombstone, state_from_bytes


class ProfileStateCodec(Codec):
    """Faust codec for ``Profile | Tombstone`` table values."""

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, Profile | Tombstone):
            raise TypeError(f"the profile table stores profiles, not {type(obj).__name__}")
        return obj.to_bytes()

    def _loads(self, s: bytes) -> Any:
        return state_from_bytes(s)
