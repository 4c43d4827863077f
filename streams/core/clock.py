"""Event time for deadlines: a per-partition watermark, optionally pushed by wall time.

Rules work in event time so a replay of last month fires what last month
would have fired. The watermark of a partition is the newest event time seen
on it minus the allowed lateness: a deadline is due once the watermark
passes it, and an event behind the watermark is late (it still updates the
profile but never fires a deadline already passed). Live, a quiet partition
would never move its watermark, so the shell may also offer the wall clock;
it is subject to the same lateness, so a straggling event can still cancel
a deadline before it fires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Watermark:
    """The newest event time seen on one partition, and the lateness allowed behind it.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> mark = Watermark(lateness=timedelta(minutes=5))
    >>> mark = mark.observe(datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    >>> mark.now()
    datetime.datetime(2024, 5, 1, 11, 55, tzinfo=datetime.timezone.utc)
    >>> mark.is_late(datetime(2024, 5, 1, 11, 50, tzinfo=UTC))
    True

    """

    lateness: timedelta
    newest: datetime | None = None
    wall: datetime | None = None

    def observe(self, event_time: datetime) -> Watermark:
        """Return the watermark after an event at ``event_time``."""
        if self.newest is not None and event_time <= self.newest:
            return self
        return Watermark(self.lateness, event_time, self.wall)

    def tick(self, wall_now: datetime) -> Watermark:
        """Return the watermark after the wall clock read ``wall_now`` (live mode)."""
        if self.wall is not None and wall_now <= self.wall:
            return self
        return Watermark(self.lateness, self.newest, wall_now)

    def now(self) -> datetime | None:
        """Event time up to which deadlines are due; None before anything was seen.

        It saturates at the earliest representable time rather than overflow:
        an event dated year 1 must not break every later event's clock.
        """
        times = [t for t in (self.newest, self.wall) if t is not None]
        if not times:
            return None
        newest = max(times)
        if newest - _EARLIEST <= self.lateness:
            return _EARLIEST
        return newest - self.lateness

    def is_late(self, event_time: datetime) -> bool:
        """Tell whether an event at ``event_time`` arrives behind the watermark."""
        current = self.now()
        return current is not None and event_time < current
