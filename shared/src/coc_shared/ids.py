"""Numbers known before anything is written: a hi/lo block allocator.

A process takes a block of ``block_size`` consecutive values of a named series in one short
transaction of its own (``UPDATE id_blocks SET next_value = next_value + n RETURNING``), then hands
them out from memory. Values are unique across processes and increase within one; a block
abandoned by a stopped process leaves a gap, which is acceptable for order numbers and audit ids
(a gap-free series, such as invoice numbers, must not use this). Changing the block size is
safe: the row holds the next free value, not a block number.

Draw a number *before* opening the unit of work that uses it: taking a new block is a short
transaction of its own, which on SQLite would wait for the write lock that an open unit of work
holds (SQLite has one writer at a time).
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine, Table, insert, update
from sqlalchemy.exc import IntegrityError


class BlockAllocator:
    def __init__(
        self, engine: Engine, table: Table, name: str, block_size: int = 100, first_value: int = 1
    ):
        if block_size < 1:
            raise ValueError("block_size must be at least 1")
        self.engine = engine
        self.table = table
        self.name = name
        self.block_size = block_size
        self.first_value = first_value
        self._lock = threading.Lock()
        self._next = 0
        self._end = 0  # exclusive

    def next(self) -> int:
        with self._lock:
            if self._next >= self._end:
                self._end = self._take_block()
                self._next = self._end - self.block_size
            value = self._next
            self._next += 1
            return value

    def _take_block(self) -> int:
        """Reserve the next block; returns its end (exclusive)."""
        t = self.table
        for _ in range(2):
            with self.engine.begin() as conn:
                end = conn.execute(
                    update(t)
                    .where(t.c.name == self.name)
                    .values(next_value=t.c.next_value + self.block_size)
                    .returning(t.c.next_value)
                ).scalar()
                if end is not None:
                    return end
            try:
                with self.engine.begin() as conn:
                    end = self.first_value + self.block_size
                    conn.execute(insert(t).values(name=self.name, next_value=end))
                    return end
            except IntegrityError:
                continue  # another process created the series first: take a block of it
        raise RuntimeError(f"could not reserve a block of {self.name}")
