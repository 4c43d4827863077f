"""Log records as one JSON object per line, or as readable lines for development.

``NUDGE_LOG_FORMAT=json`` (the container image's default) writes each record
as one line of JSON on stdout: ``timestamp`` (UTC, ISO 8601), ``level``,
``logger``, ``message``, then any fields given with ``extra=`` (for example
``log.info("scored", extra={"customer_id": cid})``) and ``exception`` when
there is one. ``NUDGE_LOG_FORMAT=console`` (the default elsewhere) writes the
same content as ``time LEVEL logger: message key=value``.

Logs carry customer ids, never personal data or secrets: every handler set
up here runs :class:`RedactPersonalData`, which replaces anything shaped like
an email address in messages, exceptions and extra fields, drops extra fields
named like personal data (``email``, ``phone``...), and replaces the values
of the secrets it is given (the Kafka password, the API token), which client
libraries may print at debug level.

A client library that cannot reach the broker logs the same error many
times a second (aiokafka: 1,267 lines in the broker-outage test's ten seconds);
:class:`RepeatLimit` lets the first few records of each call site through
in every window and counts the rest, so an outage leaves a readable log and
the next record from that site says how many were held back.

Faust's worker configures logging itself (``mode.Worker``); it takes the
dictionary :func:`logging_config` returns as Faust's ``logging_config``
setting and merges it with its own, so the level still comes from
``nudge worker -l LEVEL``.
"""

from __future__ import annotations

import logging
import logging.config
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import SecretStr

LogFormat = Literal["json", "console"]

EMAIL_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
"""Anything shaped like an email address (local part, @, a dotted domain)."""

REDACTED = "<redacted>"

PERSONAL_FIELDS = frozenset(
    {
        "email",
        "email_address",
        "to",
        "recipient",
        "phone",
        "phone_number",
        "first_name",
        "last_name",
        "full_name",
        "customer_name",
        "address",
        "street",
        "postal_code",
        "ip",
        "ip_address",
    }
)
"""Extra fields whose value is never logged, whatever it looks like."""

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__
) | {"message", "asctime", "taskName", "color_message", "log_color"}


def redact(text: str) -> str:
    """Replace every email address in ``text``.

    Apostrophes are allowed in a local part, but leading ones are kept when
    more follows, so the quotes of a ``repr`` survive.

    >>> redact("bounce for ada@example.com (cust-7), key 'o'hara@example.ie'")
    "bounce for <redacted> (cust-7), key '<redacted>'"
    """
    return EMAIL_ADDRESS.sub(_redacted, text)


def _redacted(match: re.Match[str]) -> str:
    local = match.group().partition("@")[0]
    quotes = local[: len(local) - len(local.lstrip("'"))]
    return quotes + REDACTED if len(quotes) < len(local) else REDACTED


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Return the fields a caller added to ``record`` with ``extra=``."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRIBUTES}


class RedactPersonalData(logging.Filter):
    """Remove personal data and ``secrets`` from a record before any formatter sees it.

    The message is rendered once (arguments merged in) and redacted, so a
    formatter cannot bring an address back from ``record.args``; the
    exception text is rendered and redacted the same way. kafka-python logs
    its whole configuration, SASL password included, at debug level: hence
    the secrets, replaced wherever they appear.
    """

    def __init__(self, secrets: Iterable[SecretStr] = ()) -> None:
        super().__init__()
        self._secrets = [s.get_secret_value() for s in secrets if s.get_secret_value()]

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; never drop it."""
        record.msg = self._clean(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        for key, value in extra_fields(record).items():
            if key.lower() in PERSONAL_FIELDS:
                setattr(record, key, REDACTED)
            elif isinstance(value, str):
                setattr(record, key, self._clean(value))
        return True


class RepeatLimit(logging.Filter):
    """Let at most ``burst`` warnings or errors from one call site through per ``window`` seconds.

    A call site is the logger, file and line, so a message whose arguments
    change (a node id, an attempt count) still counts as one. Records below
    WARNING pass untouched: debug and info floods are the reader's choice of
    level. The first record from a site after a held-back stretch carries
    ``repeats_suppressed``, the number of records dropped since the last one
    shown, so the log never hides that something kept happening.
    """

    def __init__(
        self,
        burst: int = 5,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if burst < 1 or window <= 0:
            raise ValueError(f"RepeatLimit needs burst >= 1 and window > 0, got {burst}, {window}")
        self._burst = burst
        self._window = window
        self._clock = clock
        self._sites: dict[tuple[str, str, int], _Site] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass ``record`` if its site is under the limit; else count it and drop it."""
        if record.levelno < logging.WARNING:
            return True
        now = self._clock()
        key = (record.name, record.pathname, record.lineno)
        site = self._sites.get(key)
        if site is None or now - site.start >= self._window:
            if site is not None and site.held:
                record.repeats_suppressed = site.held
            self._sites[key] = _Site(start=now)
            return True
        if site.shown < self._burst:
            site.shown += 1
            return True
        site.held += 1
        return False


@dataclass(slots=True)
class _Site:
    """One call site's current window: when it opened, records shown and held back in it."""

    start: float
    shown: int = 1
    held: int = 0


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _exception(record: logging.LogRecord, formatter: logging.Formatter) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    text = record.exc_text or ""
    if record.stack_info:
        text = f"{text}\n{formatter.formatStack(record.stack_info)}".lstrip("\n")
    return text or None


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single line of JSON."""
        document: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            document.setdefault(key, value)
        exception = _exception(record, self)
        if exception:
            document["exception"] = exception
        return orjson.dumps(document, default=repr).decode()


class ConsoleFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...`` for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one readable line (plus the traceback, if any)."""
        fields = " ".join(f"{k}={v}" for k, v in extra_fields(record).items())
        line = (
            f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
            + (f"  {fields}" if fields else "")
        )
        exception = _exception(record, self)
        return f"{line}\n{exception}" if exception else line


FORMATTERS: dict[str, type[logging.Formatter]] = {
    "json": JsonFormatter,
    "console": ConsoleFormatter,
}


def logging_config(
    log_format: LogFormat, secrets: Iterable[SecretStr] = (), repeat_burst: int = 5
) -> dict[str, Any]:
    """Build a ``logging.config.dictConfig`` dictionary: stdout, format, repeat limit, redaction.

    ``merge: True`` makes Faust's worker merge it with its own configuration
    (its handler named ``default`` is replaced by this one; the root level
    stays the worker's ``-l`` option). ``secrets`` stay ``SecretStr`` inside
    the dictionary, so printing it shows none of them. ``repeat_burst`` is
    :class:`RepeatLimit`'s burst; 0 leaves repeats unlimited.
    """
    filters: dict[str, dict[str, Any]] = {
        "personal_data": {"()": f"{__name__}.RedactPersonalData", "secrets": tuple(secrets)}
    }
    if repeat_burst:
        # Before redaction, which renders the message: the limit counts call sites.
        filters = {"repeats": {"()": f"{__name__}.RepeatLimit", "burst": repeat_burst}} | filters
    return {
        "version": 1,
        "merge": True,
        "disable_existing_loggers": False,
        "formatters": {"nudge": {"()": f"{__name__}.{FORMATTERS[log_format].__name__}"}},
        "filters": filters,
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "nudge",
                "filters": list(filters),
                "stream": "ext://sys.stdout",
            }
        },
    }


def configure(log_format: LogFormat, level: int | str = logging.INFO) -> None:
    """Set up the root logger for a process that is not a Faust worker."""
    config = logging_config(log_format)
    config.pop("merge")
    config["root"] = {"level": level, "handlers": ["default"]}
    logging.config.dictConfig(config)
