"""``nudge replay FILE``: publish recorded events, checked line by line.

Replay is how history reaches Nudge: last month's export, a simulation
written with ``nudge simulate --out``, a CSV from a warehouse. Parsing and
validation are pure (:func:`parse_jsonl`, :func:`parse_csv`) and yield a
:class:`Message` (kind, key, value, ready to send) or an :class:`Invalid`
(line number and reason) per line; :func:`replay` then sends the messages to
any :class:`~streams.sending.EventSink` and reports the invalid lines, so
nothing is dropped silently.

Decisions
---------
- Every line is validated with :func:`schemas.decode`, exactly as a worker
  will. ``now`` is the far future (``datetime.max``, UTC), which switches
  the future-timestamp check off: replayed history is old by nature, and
  the worker still applies its own clock-skew check on arrival.
- What is published is the canonical encoding of the decoded event
  (:func:`schemas.encode`: money as decimal strings, times in UTC), keyed by
  its ``customer_id``; fields no model knows are not forwarded.
- JSON lines are either the simulator's ``{"topic_kind": ..., "event": {...}}``
  or a bare event, whose topic comes from its ``type``. Blank lines are
  skipped (they carry no event); every other line is published or reported.
- CSV: one row per event, a header row naming the columns. A column named
  like an event field fills it; ``--column-map field=column`` reads a field
  from a differently named column. Empty cells are absent fields. Cells
  are text; integer and boolean fields (``quantity``, ``granted``: ``true``
  or ``false``) are converted by the field's schema type, and nested fields
  (an order's ``lines``) are JSON in their cell, e.g.
  ``"[{""product_id"": ""sku-1"", ""quantity"": 1, ""unit_price"": ""9.99""}]"``.
- Line numbers count physical lines from 1, the CSV header included; a CSV
  row spanning several lines (a quoted newline) is reported by its first.
"""

from __future__ import annotations

import csv
import functools
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Literal

import orjson

from schemas import DecodeError, DecodeLimits, TopicKind, decode, encode
from schemas.codec import EVENT_TYPES, InboundEvent
from streams.sending import (
    DeliveryError,
    EventSink,
    KafkaSink,
    Pacer,
    Progress,
    Tally,
    summary_text,
)
from streams.settings import Settings

__all__ = [
    "FAR_FUTURE",
    "ColumnMapError",
    "Invalid",
    "Message",
    "Parsed",
    "detect_format",
    "main",
    "parse_column_map",
    "parse_csv",
    "parse_file",
    "parse_jsonl",
    "replay",
    "replay_to_kafka",
]

FAR_FUTURE: Final = datetime.max.replace(tzinfo=UTC)
"""The ``now`` replay validates with: no recorded event is ever "in the future"."""

Format = Literal["auto", "jsonl", "csv"]

_KIND_OF_TYPE: Final[Mapping[str, TopicKind]] = {
    tag: kind for kind, members in EVENT_TYPES.items() for tag in members
}
_INTEGER: Final = re.compile(r"^[+-]?[0-9]{1,18}$")  # fits the 64 bits JSON tools expect
_BOOLEANS: Final = {"true": True, "false": False}
_WRAPPER_BYTES: Final = 256  # room for {"topic_kind": ..., "event": ...} around an event


@dataclass(frozen=True, slots=True)
class Message:
    """A valid event, ready to send: its topic kind, key (customer_id) and encoded value."""

    line: int
    kind: TopicKind
    key: bytes
    value: bytes
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Invalid:
    """A line that is not a valid event, and why."""

    line: int
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}: {self.detail}"


Parsed = Message | Invalid


class ColumnMapError(ValueError):
    """A ``--column-map`` is malformed or names a column the file lacks."""


def _validated(line: int, kind: TopicKind, raw: bytes, limits: DecodeLimits) -> Parsed:
    outcome = decode(kind, raw, now=FAR_FUTURE, limits=limits)
    if isinstance(outcome, DecodeError):
        return Invalid(line, outcome.reason.value, outcome.detail)
    return _message(line, kind, outcome)


def _message(line: int, kind: TopicKind, event: InboundEvent) -> Message:
    return Message(line, kind, event.customer_id.encode(), encode(event), event.occurred_at)


def _kind_of(line: int, obj: Mapping[str, Any]) -> TopicKind | Invalid:
    tag = obj.get("type")
    if tag is None:
        return Invalid(line, "unknown_type", "field 'type' is missing")
    if not isinstance(tag, str) or tag not in _KIND_OF_TYPE:
        known = ", ".join(sorted(_KIND_OF_TYPE))
        return Invalid(line, "unknown_type", f"unknown event type {tag!r}; known: {known}")
    return _KIND_OF_TYPE[tag]


def _parse_json_line(line: int, raw: bytes, limits: DecodeLimits) -> Parsed:
    if len(raw) > limits.max_bytes + _WRAPPER_BYTES:
        return Invalid(
            line, "too_large", f"line is {len(raw)} bytes; the limit is {limits.max_bytes}"
        )
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Invalid(line, "invalid_json", str(exc))
    if not isinstance(obj, dict):
        return Invalid(line, "not_an_object", "expected a JSON object")
    if "topic_kind" in obj:
        try:
            kind = TopicKind(obj["topic_kind"])
        except ValueError:
            known = ", ".join(TopicKind)
            return Invalid(
                line, "unknown_topic_kind", f"topic_kind {obj['topic_kind']!r}; known: {known}"
            )
        if not isinstance(obj.get("event"), dict):
            return Invalid(line, "not_an_object", "field 'event' should be a JSON object")
        return _validated(line, kind, orjson.dumps(obj["event"]), limits)
    kind_or_error = _kind_of(line, obj)
    if isinstance(kind_or_error, Invalid):
        return kind_or_error
    return _validated(line, kind_or_error, raw, limits)


def parse_jsonl(lines: Iterable[bytes], limits: DecodeLimits) -> Iterator[Parsed]:
    """Check each JSON line as an event; blank lines are skipped.

    Examples
    --------
    >>> from datetime import timedelta
    >>> limits = DecodeLimits(max_bytes=65_536, max_future_skew=timedelta(minutes=5))
    >>> good = (
    ...     b'{"type": "search", "event_id": "e1", "customer_id": "c1",'
    ...     b' "occurred_at": "2024-05-01T12:00:00Z", "query": "boots"}'
    ... )
    >>> [str(p) if isinstance(p, Invalid) else p.key for p in parse_jsonl([good, b"{"], limits)]
    [b'c1', 'line 2: invalid_json: unexpected end of data: line 1 column 2 (char 1)']

    """
    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            yield _parse_json_line(number, raw, limits)


def parse_column_map(specs: Iterable[str]) -> dict[str, str]:
    """Read ``field=column`` pairs, comma-separated or one per option.

    >>> parse_column_map(["occurred_at=ts,customer_id=user", "type=event"])
    {'occurred_at': 'ts', 'customer_id': 'user', 'type': 'event'}

    """
    mapping: dict[str, str] = {}
    for spec in specs:
        for pair in filter(None, (part.strip() for part in spec.split(","))):
            event_field, sep, column = (text.strip() for text in pair.partition("="))
            if not sep or not event_field or not column:
                raise ColumnMapError(f"expected field=column, got {pair!r}")
            if event_field in mapping:
                raise ColumnMapError(f"field {event_field!r} is mapped twice")
            mapping[event_field] = column
    return mapping


def _schema_types(schema: Mapping[str, Any]) -> set[str]:
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for key in ("anyOf", "allOf", "oneOf"):
        for part in schema.get(key, ()):
            found |= _schema_types(part)
    return found


@functools.cache
def _cell_kinds(cls: type[InboundEvent]) -> dict[str, str]:
    """How to read each field of ``cls`` from a text cell, from its JSON Schema type."""
    kinds: dict[str, str] = {}
    for name, prop in cls.model_json_schema(mode="validation")["properties"].items():
        types = _schema_types(prop)
        if "string" in types:
            kinds[name] = "text"
        elif types & {"array", "object"}:
            kinds[name] = "json"
        elif "integer" in types:
            kinds[name] = "integer"
        elif "boolean" in types:
            kinds[name] = "boolean"
        else:
            kinds[name] = "text"
    return kinds


def _cell(kind: str, cell: str) -> Any:
    # Best effort: a cell that does not convert stays text, and validation
    # then names the field and what it expected.
    if kind == "integer" and _INTEGER.match(cell):
        return int(cell)
    if kind == "boolean":
        return _BOOLEANS.get(cell.strip().lower(), cell)
    return cell


def _row_to_event(
    line: int, cells: Mapping[str, str], fields: Mapping[str, str]
) -> tuple[TopicKind, bytes] | Invalid:
    obj: dict[str, Any] = {name: cells[column] for name, column in fields.items() if cells[column]}
    kind = _kind_of(line, obj)
    if isinstance(kind, Invalid):
        return kind
    cls = EVENT_TYPES[kind][obj["type"]]
    for name, kind_of_cell in _cell_kinds(cls).items():
        if name not in obj:
            continue
        if kind_of_cell == "json":
            try:
                obj[name] = orjson.loads(obj[name])
            except orjson.JSONDecodeError as exc:
                column = fields[name]
                return Invalid(line, "invalid_json", f"column {column!r} ({name}): {exc}")
        else:
            obj[name] = _cell(kind_of_cell, obj[name])
    return kind, orjson.dumps(obj)


def _is_utf8(row: list[str]) -> bool:
    # The file is read with surrogateescape, so bad bytes become lone surrogates.
    try:
        "".join(row).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lines_with_numbers(lines: Iterable[str], numbers: list[int]) -> Iterator[str]:
    # csv.reader pulls physical lines; remember where each logical row began.
    for number, text in enumerate(lines, start=1):
        numbers.append(number)
        yield text


def parse_csv(
    lines: Iterable[str], limits: DecodeLimits, column_map: Mapping[str, str] | None = None
) -> Iterator[Parsed]:
    """Check each CSV row as an event; ``column_map`` maps event fields to columns.

    Raise :class:`ColumnMapError` before yielding anything if the map names
    a column the header lacks. Blank rows are skipped.
    """
    numbers: list[int] = []
    reader = csv.reader(_lines_with_numbers(lines, numbers))
    header = next(reader, None)
    if header is None:
        return
    column_map = dict(column_map or {})
    missing = sorted(set(column_map.values()) - set(header))
    if missing:
        raise ColumnMapError(f"--column-map names columns not in the header: {missing}")
    mapped_columns = set(column_map.values())
    fields = {column: column for column in header if column not in mapped_columns}
    fields.update(column_map)
    consumed = len(numbers)
    for row in reader:
        first_line = numbers[consumed] if consumed < len(numbers) else numbers[-1]
        consumed = len(numbers)
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if not _is_utf8(row):
            yield Invalid(first_line, "not_utf8", "row is not valid UTF-8")
            continue
        if len(row) != len(header):
            yield Invalid(first_line, "csv_shape", f"expected {len(header)} cells, got {len(row)}")
            continue
        built = _row_to_event(first_line, dict(zip(header, row, strict=True)), fields)
        if isinstance(built, Invalid):
            yield built
            continue
        kind, raw = built
        yield _validated(first_line, kind, raw, limits)


def detect_format(path: Path, requested: Format = "auto") -> Literal["jsonl", "csv"]:
    """Pick the parser: as requested, else by extension, else by the first character."""
    if requested != "auto":
        return requested
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    with path.open("rb") as file:
        head = file.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "csv"


def parse_file(
    path: Path,
    limits: DecodeLimits,
    *,
    file_format: Format = "auto",
    column_map: Mapping[str, str] | None = None,
) -> Iterator[Parsed]:
    """Parse a file lazily, line by line, in the detected or requested format."""
    if detect_format(path, file_format) == "jsonl":
        with path.open("rb") as binary:
            yield from parse_jsonl(binary, limits)
    else:
        # utf-8-sig: spreadsheets often start their CSV exports with a BOM.
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as text:
            yield from parse_csv(text, limits, column_map)


def replay(
    items: Iterable[Parsed],
    sink: EventSink,
    *,
    report: Callable[[Invalid], None],
    pacer: Pacer | None = None,
    progress: Progress | None = None,
) -> Tally:
    """Send every message to ``sink`` (paced), ``report`` every invalid line; close the sink.

    The returned tally counts what was sent per kind and the invalid lines.
    """
    pacer = pacer or Pacer()
    progress = progress or Progress(enabled=False)
    tally = Tally()
    try:
        for item in items:
            if isinstance(item, Invalid):
                tally.invalid += 1
                report(item)
                continue
            pacer.wait(tally.total, item.occurred_at)
            sink.send(item.kind, item.key, item.value)
            tally.published[item.kind] += 1
            progress.update(tally)
    finally:
        sink.close()
    progress.done(tally)
    return tally


def replay_to_kafka(
    settings: Settings,
    path: Path,
    *,
    errors: IO[str],
    speed: float | None = None,
    file_format: Format = "auto",
    column_map: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    ordered: bool = False,
) -> Tally:
    """Replay ``path`` to the inbound topics named in ``settings``; invalid lines go to ``errors``.

    ``ordered`` publishes to the replay topic instead (see ``KafkaSink``).

    A bad ``--column-map`` raises :class:`ColumnMapError` before anything is
    sent (the file's header is read first).
    """
    items = parse_file(
        path, settings.decode_limits(), file_format=file_format, column_map=column_map
    )
    first = next(items, None)  # reads the header: a bad column map fails here
    sink = KafkaSink(settings, client_id="nudge-replay", ordered=ordered)

    def report(item: Invalid) -> None:
        if progress is not None:
            progress.clear_line()
        errors.write(f"{item}\n")

    everything = items if first is None else itertools.chain([first], items)
    return replay(everything, sink, report=report, pacer=Pacer(speed=speed), progress=progress)


def main(
    settings: Settings,
    *,
    path: Path,
    speed: float | None,
    column_map: Iterable[str],
    file_format: Format,
    ordered: bool = False,
    json_summary: bool,
    quiet: bool,
    stdout: IO[str],
    stderr: IO[str],
) -> int:
    """Do what ``nudge replay`` was asked; return the exit code.

    0: every line published; 1: some lines were invalid (the valid ones were
    published) or Kafka did not acknowledge every event; 2: bad options.
    """
    progress = Progress(stream=stderr, enabled=not quiet)
    try:
        mapping = parse_column_map(column_map)
        if mapping and detect_format(path, file_format) != "csv":
            raise ColumnMapError("--column-map applies to CSV files only")
        tally = replay_to_kafka(
            settings,
            path,
            errors=stderr,
            speed=speed,
            file_format=file_format,
            column_map=mapping,
            progress=progress,
            ordered=ordered,
        )
    except ColumnMapError as exc:
        stderr.write(f"nudge replay: {exc}\n")
        return 2
    except DeliveryError as exc:
        stderr.write(f"nudge replay: {exc}\n")
        return 1
    elapsed = progress.elapsed
    destination = f"Kafka {settings.bootstrap_servers}"
    if json_summary:
        summary = {
            "destination": destination,
            "events": tally.total,
            "by_kind": tally.by_kind(),
            "invalid": tally.invalid,
            "elapsed_seconds": round(elapsed, 3),
        }
        stdout.write(orjson.dumps(summary).decode() + "\n")
    elif not quiet:
        stdout.write(summary_text(tally, elapsed, destination, {"file": str(path)}) + "\n")
    return 1 if tally.invalid else 0
