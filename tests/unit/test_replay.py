"""Replay parsing and validation, with an in-memory sink instead of Kafka."""

from __future__ import annotations

import doctest
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from schemas import DecodeLimits, TopicKind
from streams import replay as replay_module
from streams.replay import (
    ColumnMapError,
    Invalid,
    Message,
    Parsed,
    detect_format,
    parse_column_map,
    parse_csv,
    parse_file,
    parse_jsonl,
    replay,
)
from streams.sending import KafkaSink, Pacer, Progress
from streams.settings import Settings
from streams.simulator import SimulationConfig
from streams.simulator.publish import JsonLinesSink, publish
from streams.simulator.shop import generate

pytestmark = pytest.mark.unit

LIMITS = DecodeLimits(max_bytes=64 * 1024, max_future_skew=timedelta(minutes=5))


class MemorySink:
    """Collects what would be sent to Kafka."""

    def __init__(self) -> None:
        self.sent: list[tuple[TopicKind, bytes, bytes]] = []
        self.closed = False

    def send(self, kind: TopicKind, key: bytes, value: bytes) -> None:
        self.sent.append((kind, key, value))

    def close(self) -> None:
        self.closed = True


def event(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "type": "search",
        "event_id": "e1",
        "customer_id": "c1",
        "occurred_at": "2024-05-01T12:00:00+02:00",
        "query": "boots",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def jsonl(*objects: object) -> list[bytes]:
    return [orjson.dumps(o) + b"\n" for o in objects]


def messages(items: Iterator[Parsed]) -> tuple[list[Message], list[Invalid]]:
    parsed = list(items)
    return (
        [p for p in parsed if isinstance(p, Message)],
        [p for p in parsed if isinstance(p, Invalid)],
    )


# --- JSON lines -------------------------------------------------------------------


def test_bare_events_are_routed_by_type_and_keyed_by_customer() -> None:
    lines = jsonl(
        event(),
        event(type="cart_add", event_id="e2", customer_id="c2", cart_id="k", product_id="p",
              quantity=2, unit_price=19.99, currency="EUR", query=None),
        event(type="email_open", event_id="e3", campaign_id="n1", message_id="m1", query=None),
    )  # fmt: skip
    good, bad = messages(parse_jsonl(lines, LIMITS))
    assert bad == []
    assert [(m.line, m.kind, m.key) for m in good] == [
        (1, TopicKind.clickstream, b"c1"),
        (2, TopicKind.cart, b"c2"),
        (3, TopicKind.email, b"c1"),
    ]
    # The canonical encoding goes out: UTC times, money as a decimal string.
    cart = orjson.loads(good[1].value)
    assert cart["occurred_at"] == "2024-05-01T10:00:00Z"
    assert cart["unit_price"] == "19.99"
    assert good[0].occurred_at == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_the_simulator_shape_is_read_with_its_topic_kind() -> None:
    line = orjson.dumps({"topic_kind": "clickstream", "event": event()})
    [parsed] = parse_jsonl([line], LIMITS)
    assert isinstance(parsed, Message)
    assert parsed.kind is TopicKind.clickstream


def test_invalid_lines_are_reported_with_their_numbers_and_reasons() -> None:
    lines = [
        orjson.dumps(event()),  # 1 valid
        b"{not json\n",  # 2
        b"\n",  # 3 blank: skipped, still counted
        b"[1, 2]\n",  # 4
        orjson.dumps(event(type="teleport")),  # 5
        orjson.dumps(event(query="")),  # 6 empty query
        orjson.dumps({"topic_kind": "cart", "event": event()}),  # 7 search is not a cart event
        orjson.dumps({"topic_kind": "orders", "event": event()}),  # 8
        orjson.dumps(event(occurred_at="2024-05-01T12:00:00")),  # 9 naive time
        orjson.dumps(event(event_id="e10")),  # 10 valid
        b"\xff\xfe\n",  # 11
        orjson.dumps(event(type=None)),  # 12 no type
    ]
    good, bad = messages(parse_jsonl(lines, LIMITS))
    assert [m.line for m in good] == [1, 10]
    assert [(b.line, b.reason) for b in bad] == [
        (2, "invalid_json"),
        (4, "not_an_object"),
        (5, "unknown_type"),
        (6, "validation_failed"),
        (7, "wrong_topic"),
        (8, "unknown_topic_kind"),
        (9, "validation_failed"),
        (11, "invalid_json"),
        (12, "unknown_type"),
    ]
    assert "query" in str(bad[3])
    assert str(bad[4]).startswith("line 7: wrong_topic: ")


def test_history_and_future_are_both_accepted_the_worker_checks_its_clock() -> None:
    lines = jsonl(event(occurred_at="1999-01-01T00:00:00Z"), event(occurred_at="2199-01-01T00:00Z"))
    good, bad = messages(parse_jsonl(lines, LIMITS))
    assert (len(good), bad) == (2, [])


def test_an_oversized_line_is_rejected_before_parsing() -> None:
    huge = orjson.dumps(event(query="x" * 500, title="y" * (LIMITS.max_bytes + 1000)))
    [parsed] = parse_jsonl([huge], LIMITS)
    assert isinstance(parsed, Invalid)
    assert parsed.reason == "too_large"


# --- CSV --------------------------------------------------------------------------

LINES_CELL = '"[{""product_id"": ""sku-1"", ""quantity"": 2, ""unit_price"": ""19.99""}]"'
CSV = """\
ts,user,type,event_id,product_id,quantity,unit_price,currency,cart_id,lines,total,order_id
2024-05-01T12:00:00Z,u1,cart_add,e1,sku-1,2,19.99,EUR,k1,,,
2024-05-01T12:05:00Z,u1,order_completed,e2,,,,EUR,k1,LINES_CELL,44.93,o1
2024-05-01T12:06:00Z,u2,cart_add,e3,sku-2,two,5,EUR,k2,,,
2024-05-01T12:07:00Z,u2,cart_add,e4,sku-2,1,5,EUR,k2,,,

2024-05-01T12:08:00Z,u3,cart_add,e5,sku-3
2024-05-01T12:09:00Z,u3,order_completed,e6,,,,EUR,,[{oops,10,o2
2024-05-01T12:10:00Z,u4,search,e7,,,,,,,,
""".replace("LINES_CELL", LINES_CELL)
COLUMNS = {"occurred_at": "ts", "customer_id": "user"}


def test_csv_rows_become_events_through_the_column_map() -> None:
    good, bad = messages(parse_csv(io.StringIO(CSV), LIMITS, COLUMNS))
    assert [(m.line, m.kind, m.key) for m in good] == [
        (2, TopicKind.cart, b"u1"),
        (3, TopicKind.cart, b"u1"),
        (5, TopicKind.cart, b"u2"),
    ]
    add, order = (orjson.loads(m.value) for m in good[:2])
    assert add["quantity"] == 2
    assert add["occurred_at"] == "2024-05-01T12:00:00Z"
    assert order["lines"] == [{"product_id": "sku-1", "quantity": 2, "unit_price": "19.99"}]
    assert order["total"] == "44.93"
    assert [(b.line, b.reason) for b in bad] == [
        (4, "validation_failed"),  # quantity "two"
        (7, "csv_shape"),
        (8, "invalid_json"),  # the lines cell
        (9, "validation_failed"),  # a search needs a query
    ]
    assert "quantity" in bad[0].detail
    assert "'lines'" in bad[2].detail


def test_csv_booleans_integers_and_a_quoted_newline() -> None:
    text = (
        "type,event_id,customer_id,occurred_at,channel,granted,source\n"
        "consent_changed,e1,c1,2024-05-01T12:00:00Z,email,TRUE,form\n"
        'consent_changed,e2,c1,2024-05-01T12:00:00Z,email,false,"two\nlines"\n'
        "consent_changed,e3,c1,2024-05-01T12:00:00Z,email,maybe,form\n"
    )
    good, bad = messages(parse_csv(io.StringIO(text), LIMITS))
    assert [orjson.loads(m.value)["granted"] for m in good] == [True]
    # Row 2 starts on line 3 and has a control character in `source`;
    # row 3 starts on line 5 and its boolean does not parse.
    assert [(b.line, b.reason) for b in bad] == [(3, "validation_failed"), (5, "validation_failed")]


def test_a_column_map_naming_a_missing_column_fails_before_anything_is_parsed() -> None:
    with pytest.raises(ColumnMapError, match="stamp"):
        list(parse_csv(io.StringIO(CSV), LIMITS, {"occurred_at": "stamp"}))


def test_column_map_syntax() -> None:
    assert parse_column_map(["a=b, c = d", "e=f"]) == {"a": "b", "c": "d", "e": "f"}
    for bad in (["a"], ["=b"], ["a="], ["a=b,a=c"]):
        with pytest.raises(ColumnMapError):
            parse_column_map(bad)


def test_files_are_detected_and_a_bom_is_tolerated(tmp_path: Path) -> None:
    csv_path = tmp_path / "export.txt"
    csv_path.write_bytes(b"\xef\xbb\xbf" + CSV.encode())
    assert detect_format(csv_path) == "csv"
    good, bad = messages(parse_file(csv_path, LIMITS, column_map=COLUMNS))
    assert (len(good), len(bad)) == (3, 4)
    json_path = tmp_path / "events.log"
    json_path.write_bytes(b"".join(jsonl(event())))
    assert detect_format(json_path) == "jsonl"
    assert detect_format(json_path, "csv") == "csv"
    assert detect_format(tmp_path / "x.ndjson") == "jsonl"


def test_a_simulation_file_replays_whole(tmp_path: Path) -> None:
    config = SimulationConfig(seed=3, customers=40, duration=timedelta(days=1))
    result = publish(generate(config), JsonLinesSink(tmp_path / "events.jsonl"))
    good, bad = messages(parse_file(tmp_path / "events.jsonl", LIMITS))
    assert bad == []
    assert len(good) == result.tally.total
    counts = {kind: sum(1 for m in good if m.kind is kind) for kind in TopicKind}
    assert counts == dict(result.tally.published)


# --- replay and pacing -----------------------------------------------------------


def test_replay_sends_the_valid_reports_the_invalid_and_closes_the_sink() -> None:
    lines = [orjson.dumps(event()), b"{", orjson.dumps(event(event_id="e2", customer_id="c9"))]
    sink, reported = MemorySink(), list[Invalid]()
    tally = replay(parse_jsonl(lines, LIMITS), sink, report=reported.append)
    assert [(kind, key) for kind, key, _ in sink.sent] == [
        (TopicKind.clickstream, b"c1"),
        (TopicKind.clickstream, b"c9"),
    ]
    assert sink.closed
    assert [i.line for i in reported] == [2]
    assert (tally.total, tally.invalid, tally.by_kind()["clickstream"]) == (2, 1, 2)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_speed_keeps_the_gaps_between_event_times_scaled() -> None:
    clock = FakeClock()
    pacer = Pacer(speed=60, clock=clock, sleep=clock.sleep)
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    for sent, minutes in enumerate([0, 1, 1, 3, 2]):  # the last one is out of order
        assert pacer.wait(sent, t0 + timedelta(minutes=minutes))
    assert clock.sleeps == [1.0, 2.0]  # one simulated minute is one wall second


def test_rate_paces_by_count_and_a_deadline_bounds_the_wait() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=4, clock=clock, sleep=clock.sleep)
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    for sent in range(5):
        assert pacer.wait(sent, t0)
    assert clock.now == pytest.approx(101.0)
    assert not pacer.wait(8, t0, deadline=101.5)  # due at 102
    assert clock.now == pytest.approx(101.5)
    with pytest.raises(ValueError, match="not both"):
        Pacer(rate=1, speed=1)


def test_progress_off_a_terminal_prints_plain_lines() -> None:
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(stream=stream, clock=clock, log_every=5)
    sink = MemorySink()
    lines = [orjson.dumps(event(event_id=f"e{n}")) for n in range(3)]
    replay(parse_jsonl(lines, LIMITS), sink, report=print, progress=progress)
    assert stream.getvalue() == "3 events (3,000,000,000/s)\n"


# --- the command's glue, with Kafka swapped for memory ------------------------------


def test_main_publishes_valid_lines_and_exits_1_naming_invalid_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sinks: list[MemorySink] = []

    def memory_sink(settings: Settings, *, client_id: str, ordered: bool) -> MemorySink:
        assert not ordered  # the inbound topics, unless --ordered
        sinks.append(MemorySink())
        return sinks[-1]

    monkeypatch.setattr(replay_module, "KafkaSink", memory_sink)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join([orjson.dumps(event()) + b"\n", b"oops\n", b"\n", b"[]\n"]))
    stdout, stderr = io.StringIO(), io.StringIO()
    code = replay_module.main(
        Settings(),
        path=path,
        speed=None,
        column_map=(),
        file_format="auto",
        json_summary=True,
        quiet=True,
        stdout=stdout,
        stderr=stderr,
    )
    assert code == 1
    first, second = stderr.getvalue().splitlines()
    assert first.startswith("line 2: invalid_json: unexpected character")
    assert second == "line 4: not_an_object: expected a JSON object"
    summary = orjson.loads(stdout.getvalue())
    assert (summary["events"], summary["invalid"]) == (1, 2)
    assert len(sinks[0].sent) == 1


def test_main_rejects_a_column_map_for_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(orjson.dumps(event()))
    stderr = io.StringIO()
    code = replay_module.main(
        Settings(),
        path=path,
        speed=None,
        column_map=("occurred_at=ts",),
        file_format="auto",
        json_summary=False,
        quiet=True,
        stdout=io.StringIO(),
        stderr=stderr,
    )
    assert code == 2
    assert "CSV files only" in stderr.getvalue()


def test_docstring_examples() -> None:
    result = doctest.testmod(replay_module, optionflags=doctest.ELLIPSIS)
    assert (result.failed, result.attempted > 0) == (0, True)


def test_an_ordered_sink_sends_every_kind_to_the_replay_topic() -> None:
    settings = Settings(topic_replay="backfill")
    topics = KafkaSink.topics_for(settings, ordered=True)
    assert set(topics.values()) == {"backfill"}
    assert set(topics) == set(settings.inbound_topics())
    assert KafkaSink.topics_for(settings, ordered=False) == settings.inbound_topics()
