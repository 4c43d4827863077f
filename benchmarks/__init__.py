"""Nudge's performance benchmark: ``python -m benchmarks.run`` (or ``make bench``)."""
