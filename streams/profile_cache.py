"""The profile table as the engine reads it: bytes at rest, the busiest customers decoded.

A decoded profile is a tree of frozen pydantic models, about 8.9 KB in
memory for the 1.8 KB it serialises to (measured on simulated customers).
Keeping every customer of a worker decoded cost about 850 MiB per 100,000
customers and made a restore decode every changelog record. The table
therefore stores each profile's bytes, exactly what its changelog holds,
and this mapping keeps the ``capacity`` most recently used customers
decoded in front of it: a busy customer is decoded once, a cold one when
they come back.

Anything else that changes the table (a restore from the changelog, a
partition handed to another worker) must call :meth:`ProfileCache.invalidate`
or :meth:`ProfileCache.forget_decoded`; the worker wires both (``streams.app``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, MutableMapping

from streams.core.profile import Profile, Tombstone, state_from_bytes

State = Profile | Tombstone


def stored_bytes(state: State) -> bytes:
    """``state.to_bytes()`` in an allocation of its own size, to be kept for long.

    orjson returns its output in the buffer it grew while writing: a 1.6 KB
    profile held about 8 KB (tracemalloc over 20,000 simulated customers: 155
    MiB live for 33 MiB of JSON). A copy costs one memcpy per commit write.
    """
    return bytes(memoryview(state.to_bytes()))


class ProfileCache(MutableMapping[str, State]):
    """A mapping of customer id to profile over a table of their serialised bytes.

    Writes go through to ``table`` as bytes (the changelog record Faust
    produces is those bytes, unchanged) and keep the decoded value; reads
    decode on a miss. ``capacity`` 0 keeps nothing decoded.
    """

    def __init__(self, table: MutableMapping[str, bytes], capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"a profile cache holds 0 or more customers, not {capacity}")
        self._table = table
        self._capacity = capacity
        self._decoded: OrderedDict[str, State] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __getitem__(self, customer_id: str) -> State:
        decoded = self._decoded.get(customer_id)
        if decoded is not None:
            self.hits += 1
            self._decoded.move_to_end(customer_id)
            return decoded
        raw = self._table[customer_id]
        self.misses += 1
        state = state_from_bytes(raw)
        self._hold(customer_id, state)
        return state

    def __setitem__(self, customer_id: str, state: State) -> None:
        self._table[customer_id] = stored_bytes(state)
        self._hold(customer_id, state)

    def __delitem__(self, customer_id: str) -> None:
        self._decoded.pop(customer_id, None)
        del self._table[customer_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    @property
    def table(self) -> MutableMapping[str, bytes]:
        """The table of bytes behind this mapping."""
        return self._table

    def keep(self, customer_id: str, state: State) -> bytes:
        """Hold ``state`` decoded and return the bytes for the caller to store in :attr:`table`.

        For a writer that writes the table in bulk itself (the commit's
        :class:`~streams.commits.StateWriter`) rather than one key at a time.
        """
        self._hold(customer_id, state)
        return stored_bytes(state)

    @property
    def decoded(self) -> int:
        """How many customers are held decoded now."""
        return len(self._decoded)

    def invalidate(self, customer_id: str) -> None:
        """Forget the decoded copy: the table's value changed behind this mapping."""
        self._decoded.pop(customer_id, None)

    def forget_decoded(self) -> None:
        """Forget every decoded copy (the table keeps its values)."""
        self._decoded.clear()

    def _hold(self, customer_id: str, state: State) -> None:
        if self._capacity == 0:
            return
        self._decoded[customer_id] = state
        self._decoded.move_to_end(customer_id)
        if len(self._decoded) > self._capacity:
            self._decoded.popitem(last=False)
