"""Write the JSON Schemas of every topic, the contract with producers and consumers.

The files under ``schemas/json/`` are generated, checked in and compared with
:func:`render_all` by a unit test, so a model change that alters the wire
format shows up in review as a schema diff. Regenerate with ``make schemas``
(``python -m schemas.export schemas/json``).

Inbound topics are described as pydantic *validates* them (what producers may
send: a price as a number or a string); the outbound messages (dead letters,
profile changes, triggers and trigger decisions) as pydantic *serializes*
them (what consumers receive).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

import orjson
from pydantic import TypeAdapter

from schemas.codec import ADAPTERS, TopicKind
from schemas.deadletter import DeadLetter
from schemas.profiles import PROFILE_MESSAGE_ADAPTER
from schemas.triggers import DECISION_ADAPTER, TRIGGER_ADAPTER

__all__ = ["JSON_SCHEMA_DIALECT", "main", "render_all"]

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema draft pydantic generates and the files declare."""

_TITLES: Final[dict[TopicKind, str]] = {
    TopicKind.clickstream: "Nudge clickstream topic message",
    TopicKind.cart: "Nudge cart topic message",
    TopicKind.email: "Nudge email topic message",
    TopicKind.customers: "Nudge customers topic message",
}


def _render(
    adapter: TypeAdapter[Any], title: str, mode: Literal["validation", "serialization"]
) -> str:
    schema = adapter.json_schema(mode=mode)
    schema = {"$schema": JSON_SCHEMA_DIALECT, "title": title, **schema}
    text = orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return text + "\n"


def render_all() -> dict[str, str]:
    """Render every schema file: file name to its exact text."""
    files = {
        f"{kind}.json": _render(ADAPTERS[kind], _TITLES[kind], "validation") for kind in TopicKind
    }
    files["deadletter.json"] = _render(
        TypeAdapter(DeadLetter), "Nudge dead-letter message", "serialization"
    )
    files["profiles.json"] = _render(
        PROFILE_MESSAGE_ADAPTER, "Nudge profiles.outbound message", "serialization"
    )
    files["triggers.json"] = _render(
        TRIGGER_ADAPTER, "Nudge triggers.outbound and triggers.holdout message", "serialization"
    )
    files["decisions.json"] = _render(
        DECISION_ADAPTER, "Nudge triggers.decisions message", "serialization"
    )
    return files


def main(argv: Sequence[str] | None = None) -> int:
    """Write the schema files into the directory given as the only argument."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m schemas.export OUTDIR\n")
        return 2
    outdir = Path(args[0])
    outdir.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(render_all().items()):
        path = outdir / name
        path.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
