"""Which customers have something due on each partition, and when.

Deadlines (trigger rules) and label horizons (the models' negatives) are
stored per customer in changelogged tables; this in-memory index only says
where to look, so a clock tick does not scan the table. It is filled as
events are handled and from the changelogs during recovery, and it may hold
stale entries (a deadline cancelled since): the stored state decides.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from datetime import datetime


class DueIndex:
    """Per partition, a heap of (due time, customer id)."""

    def __init__(self) -> None:
        self._heaps: defaultdict[int, list[tuple[datetime, str]]] = defaultdict(list)
        self._earliest: dict[tuple[int, str], datetime] = {}

    def add(self, partition: int, due_at: datetime | None, customer_id: str) -> None:
        """Remember that ``customer_id`` has something due at ``due_at`` (None: nothing).

        Only an earlier time than the one already indexed is pushed: a busy
        customer does not fill the heap, and when the earlier entry pops the
        shell re-indexes whatever is really next.
        """
        if due_at is None:
            return
        slot = (partition, customer_id)
        known = self._earliest.get(slot)
        if known is None or due_at < known:
            self._earliest[slot] = due_at
            heapq.heappush(self._heaps[partition], (due_at, customer_id))

    def pop_due(self, partition: int, now: datetime) -> list[str]:
        """Return the customers with something due by ``now``, earliest first, once each."""
        heap = self._heaps.get(partition)
        due: dict[str, None] = {}
        while heap and heap[0][0] <= now:
            customer_id = heapq.heappop(heap)[1]
            self._earliest.pop((partition, customer_id), None)
            due[customer_id] = None
        return list(due)

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())
