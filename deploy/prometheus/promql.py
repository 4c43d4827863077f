"""Small PromQL helpers for checking the dashboards and rules (no parser needed).

Used by the tests: which metrics an expression reads, and the same expression
with its comparisons turned into ``bool`` ones so it returns a series (0 or
1) whether or not the alert would fire.
"""

from __future__ import annotations

import re

COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")

# Nudge's metrics, recorded series (level:metric:operations) and Prometheus' `up`.
_METRIC = re.compile(r"(?<![\w:])(?:[a-z_][a-z0-9_]*:[a-z0-9_:]+|nudge_[a-z0-9_]+|up)(?![\w:(])")
_HISTOGRAM_PARTS = ("_bucket", "_count", "_sum")


def _code(expr: str) -> str:
    """``expr`` with string literals, label matchers and ranges blanked out."""
    out: list[str] = []
    closing = {"{": "}", "[": "]", '"': '"', "'": "'"}
    inside: str | None = None
    for char in expr:
        if inside is None:
            if char in closing:
                inside = closing[char]
                out.append(" ")
            else:
                out.append(char)
        else:
            out.append(" ")
            if char == inside:
                inside = None
    return "".join(out)


def referenced_metrics(expr: str) -> set[str]:
    """Metric and recorded-series names ``expr`` selects (histogram suffixes removed).

    >>> sorted(referenced_metrics(
    ...     'histogram_quantile(0.99, sum by (le) (rate(nudge_event_processing_seconds_bucket'
    ...     '{topic="cart"}[5m]))) > bool on() topic:nudge_events_consumed:rate5m'))
    ['nudge_event_processing_seconds', 'topic:nudge_events_consumed:rate5m']
    """
    names = set()
    for name in _METRIC.findall(_code(expr)):
        if name.startswith("nudge_"):
            for part in _HISTOGRAM_PARTS:
                if name.endswith(part):
                    name = name.removesuffix(part)
                    break
        names.add(name)
    return names


def with_bool_comparisons(expr: str) -> str:
    """``expr`` with ``bool`` after every comparison that lacks it.

    A filtering comparison returns nothing while an alert is quiet; its
    ``bool`` form returns the same series with 0 or 1, so a test can tell an
    expression that reads real series from one that reads nothing.

    >>> with_bool_comparisons('up{job="nudge"} == 0 and rate(x[5m]) > bool 1')
    'up{job="nudge"} == bool 0 and rate(x[5m]) > bool 1'
    """
    code = _code(expr)
    result: list[str] = []
    i = 0
    while i < len(expr):
        operator = next((op for op in COMPARISONS if code.startswith(op, i)), None)
        if operator is None:
            result.append(expr[i])
            i += 1
            continue
        result.append(operator)
        i += len(operator)
        if not re.match(r"\s*bool\b", expr[i:]):
            result.append(" bool")
    return "".join(result)
