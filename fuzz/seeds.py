"""Write what the fuzz target starts from: ``python -m fuzz.seeds CORPUS_DIR DICT_FILE``.

The seeds are the messages the tests already know, valid and invalid, in the
target's input format (message values separated by newlines, applied in
order), so the fuzzer starts from every event type and every kind of garbage
instead of rediscovering JSON. Large garbage (nesting 100,000 deep, 1 MiB
strings) is left out: libFuzzer sizes its inputs after the largest seed, and
the volume test covers those.
"""

from __future__ import annotations

import hashlib
import random
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson

from tests.support.events import (
    BASE_TIME,
    CLASS_OF_TYPE,
    KINDS,
    bad_messages,
    poison_message,
    valid_event,
)
from tests.unit.schema_samples import ALL_TYPES, full, minimal

MAX_SEED_BYTES = 8 * 1024
"""Seeds larger than this are skipped, so the fuzzer's inputs stay small and fast."""


def seeds() -> Iterator[bytes]:
    """Every seed input, deterministic from run to run."""
    for event_type in ALL_TYPES:
        yield orjson.dumps(minimal(event_type))
        yield orjson.dumps(full(event_type))
    # A customer's story in one input: the reducer and engine see a state evolve.
    story = [minimal(t) for t in ("consent_changed", "product_view", "cart_add", "email_sent")]
    yield b"\n".join(orjson.dumps(event) for event in story)
    yield b"\n".join(
        orjson.dumps(minimal(t))
        for t in ("cart_add", "checkout_started", "order_completed", "order_completed")
    )
    yield b"\n".join(orjson.dumps(minimal(t)) for t in ("page_view", "customer_erased", "search"))
    rng = random.Random(8)  # noqa: S311 - reproducible seeds, not secrets
    for n, kind in enumerate(KINDS * 4):
        yield orjson.dumps(valid_event(rng, kind, "cus-1", BASE_TIME + timedelta(minutes=n)))
    for index in range(9):
        _, _, _, raw, _, _ = bad_messages(rng, "cus-1", index)
        yield raw
    for index in range(600):
        poison = poison_message(rng, "cus-1", index, ["gone-1"], BASE_TIME)
        if poison.value is not None:
            yield poison.value


TIMES = (
    "0001-01-01T00:00:00Z", "1899-12-31T23:59:59Z", "1900-01-01T00:00:00Z",
    "9999-12-31T23:59:59-23:59", "2026-11-30T23:59:59+14:00", "2026-02-30T00:00:00Z",
    "2026-11-02T09:00:00",
)  # fmt: skip
NUMBERS = (
    "0", "-0", "-1", "0.00001", "1e400", "-1e400", "1e-400", "NaN", "Infinity",
    "9223372036854775808", "18446744073709551616", "10000", "10001", "true", "null",
)  # fmt: skip
TEXTS = (
    "", "   ", "\\u0000", "\\ud800", "\\udc00", "\\u202e", "\xff", "\xc0\xaf", "\xed\xa0\x80",
    "EUR", "XXX", "eur", "hard", "soft", "email", "sms", "Europe/Paris", "pt_br",
    "https://", "javascript:",
)  # fmt: skip
"""Values at the edge of a check (JSON escapes are written escaped, as on the wire)."""

OVERRIDES = {
    "occurred_at": [f'"{time}"' for time in TIMES],
    "quantity": list(NUMBERS),
    "price": list(NUMBERS),
    "total": list(NUMBERS),
    "customer_id": [f'"{text}"' for text in TEXTS[:9]],
}
"""Fields worth overriding whole: JSON keeps the last of two equal keys, so
``,"occurred_at":"0001-01-01T00:00:00Z"`` spliced in before a closing brace
replaces the event's own value in one mutation."""


def dictionary() -> list[bytes]:
    """Every word of the dictionary: names quoted, edge values, and whole-field overrides."""
    names = {name for cls in CLASS_OF_TYPE.values() for name in cls.model_fields}
    names |= {"product_id", "quantity", "unit_price"}  # the fields of an order line
    words = [f'"{word}"' for word in sorted(names | set(CLASS_OF_TYPE))]
    words += [*TIMES, *NUMBERS, *TEXTS[1:], "{}", "[]", "[[[[", "}}}}"]
    words += [f',"{name}":{value}' for name, values in OVERRIDES.items() for value in values]
    return [word.encode("latin-1") for word in words]


def _dictionary_line(word: bytes) -> str:
    escaped = "".join(
        chr(byte) if 0x20 <= byte < 0x7F and byte not in b'"\\' else f"\\x{byte:02x}"
        for byte in word
    )
    return f'"{escaped}"'


def write_dictionary(path: Path) -> int:
    """Write the dictionary in libFuzzer's format (one quoted word a line); return its size."""
    words = dictionary()
    path.write_text("".join(_dictionary_line(word) + "\n" for word in words))
    return len(words)


def write_seeds(directory: Path) -> int:
    """Write each seed small enough to ``directory`` (named by content); return how many."""
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for seed in seeds():
        if len(seed) <= MAX_SEED_BYTES:
            (directory / hashlib.sha1(seed, usedforsecurity=False).hexdigest()).write_bytes(seed)
            written += 1
    return written


if __name__ == "__main__":
    corpus, words = Path(sys.argv[1]), Path(sys.argv[2])
    print(f"{write_seeds(corpus)} seeds in {corpus}, {write_dictionary(words)} words in {words}")
