"""Structured logs: one JSON line per record, readable lines for people, no personal data."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.logs import (
    REDACTED,
    ConsoleFormatter,
    JsonFormatter,
    RedactPersonalData,
    RepeatLimit,
    configure,
    logging_config,
    redact,
)

pytestmark = pytest.mark.unit

Capture = tuple[logging.Logger, io.StringIO, "logging.StreamHandler[io.StringIO]"]


@pytest.fixture
def capture() -> Iterator[Capture]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactPersonalData())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("nudge.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream, handler
    finally:
        logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_one_json_line_with_the_fields_a_log_store_indexes(capture: Capture) -> None:
    logger, stream, _ = capture
    logger.info("scored %s", "cust-7", extra={"customer_id": "cust-7", "score": 0.82})
    [record] = lines(stream)
    assert record["level"] == "INFO"
    assert record["logger"] == "nudge.test.logs"
    assert record["message"] == "scored cust-7"
    assert record["customer_id"] == "cust-7"
    assert record["score"] == 0.82
    assert str(record["timestamp"]).endswith("+00:00")


def test_an_exception_stays_on_the_same_line(capture: Capture) -> None:
    logger, stream, _ = capture
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception("processing failed at %s[%d]@%d", "cart", 3, 41)
    assert stream.getvalue().count("\n") == 1
    [record] = lines(stream)
    assert record["level"] == "ERROR"
    assert "ValueError: bad" in str(record["exception"])


def test_email_addresses_never_reach_the_output(capture: Capture) -> None:
    logger, stream, _ = capture
    logger.warning(
        "dead-lettered cart[0]@5: key_mismatch: message key %r does not match",
        "ada.lovelace+shop@example.co.uk",
        extra={"customer_id": "cust-1", "detail": "sent to grace@navy.mil", "email": "x"},
    )
    try:
        raise KeyError("bob@example.org")
    except KeyError:
        logger.exception("lookup failed")
    output = stream.getvalue()
    for address in ("ada.lovelace+shop@example.co.uk", "grace@navy.mil", "bob@example.org"):
        assert address not in output
    first, second = lines(stream)
    assert first["message"] == (
        f"dead-lettered cart[0]@5: key_mismatch: message key '{REDACTED}' does not match"
    )
    assert first["detail"] == f"sent to {REDACTED}"
    assert first["email"] == REDACTED
    assert first["customer_id"] == "cust-1"
    assert REDACTED in str(second["exception"])


def test_personal_fields_are_dropped_whatever_they_hold(capture: Capture) -> None:
    logger, stream, _ = capture
    logger.info("updated", extra={"phone": "+49 30 1234567", "first_name": "Ada", "locale": "de"})
    [record] = lines(stream)
    assert record["phone"] == REDACTED
    assert record["first_name"] == REDACTED
    assert record["locale"] == "de"


@given(
    st.emails(),
    st.text(alphabet=st.characters(blacklist_characters="@"), max_size=20),
)
def test_redact_removes_any_email_address(address: str, around: str) -> None:
    assert address not in redact(f"{around} {address} {around}")


def test_ids_offsets_and_times_are_left_alone() -> None:
    text = "cust-0042 partition 3 offset 1200 at 2026-11-02T09:00:00+00:00 sku-1@2"
    assert redact(text) == text


def test_console_format_is_one_readable_line_with_the_extra_fields() -> None:
    record = logging.LogRecord(
        "streams.ingest", logging.WARNING, __file__, 1, "hello %s", ("x",), None
    )
    record.customer_id = "cust-1"
    line = ConsoleFormatter().format(record)
    assert "WARNING" in line
    assert "streams.ingest: hello x" in line
    assert line.endswith("customer_id=cust-1")
    assert "\n" not in line


def test_the_worker_configuration_replaces_fausts_handler_and_keeps_its_level() -> None:
    config = logging_config("json")
    # mode merges this with its own configuration: `merge` set, no root (its -l level stays).
    assert config["merge"] is True
    assert "root" not in config
    assert set(config["handlers"]) == {"default"}
    assert config["handlers"]["default"]["filters"] == ["repeats", "personal_data"]


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_configure_sets_up_the_root_logger(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure(log_format, logging.INFO)  # type: ignore[arg-type]
        logging.getLogger("streams.test").info("to ada@example.com", extra={"customer_id": "c-1"})
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    out = capsys.readouterr().out
    assert "ada@example.com" not in out
    assert "c-1" in out
    if log_format == "json":
        assert orjson.loads(out)["message"] == f"to {REDACTED}"


def test_docstring_examples() -> None:
    import doctest

    from streams import logs

    assert doctest.testmod(logs).failed == 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def error_at(
    line: int, message: str = "Unable connect to node 1", level: int = 40
) -> logging.LogRecord:
    return logging.LogRecord("aiokafka", level, "conn.py", line, message, (), None)


def test_a_flood_from_one_call_site_is_cut_to_a_burst_per_window() -> None:
    clock = Clock()
    limit = RepeatLimit(burst=3, window=10.0, clock=clock)
    shown = []
    for n in range(100):  # 100 errors in 1 s, as a client does while the broker is down
        clock.now = n / 100
        record = error_at(7, f"attempt {n}")
        if limit.filter(record):
            shown.append(record)
    assert [r.getMessage() for r in shown] == ["attempt 0", "attempt 1", "attempt 2"]

    clock.now = 10.5  # the next window: shown again, saying how many were held back
    record = error_at(7)
    assert limit.filter(record)
    assert record.repeats_suppressed == 97  # type: ignore[attr-defined]


def test_other_sites_and_lower_levels_are_not_limited() -> None:
    limit = RepeatLimit(burst=1, window=10.0, clock=Clock())
    assert limit.filter(error_at(7))
    assert not limit.filter(error_at(7))
    assert limit.filter(error_at(8))  # another line
    assert all(limit.filter(error_at(7, level=logging.INFO)) for _ in range(50))


def test_a_quiet_site_carries_no_count() -> None:
    clock = Clock()
    limit = RepeatLimit(burst=2, window=1.0, clock=clock)
    for n in range(6):
        clock.now = float(n)
        record = error_at(7)
        assert limit.filter(record)
        assert not hasattr(record, "repeats_suppressed")


@pytest.mark.parametrize(("burst", "window"), [(0, 1.0), (1, 0.0)])
def test_a_limit_that_would_drop_everything_is_refused(burst: int, window: float) -> None:
    with pytest.raises(ValueError, match="RepeatLimit"):
        RepeatLimit(burst=burst, window=window)


def test_the_worker_configuration_limits_repeats_through_dict_config(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = logging_config("console")
    config.pop("merge")
    config["root"] = {"level": "INFO", "handlers": ["default"]}
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        logging.config.dictConfig(config)
        for n in range(50):
            logging.getLogger("aiokafka.test").error("Unable connect to node %d", n)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    assert capsys.readouterr().out.count("Unable connect to node") == 5


def test_a_burst_of_zero_turns_the_limit_off() -> None:
    config = logging_config("json", repeat_burst=0)
    assert config["handlers"]["default"]["filters"] == ["personal_data"]
    assert logging_config("json", repeat_burst=2)["filters"]["repeats"]["burst"] == 2
