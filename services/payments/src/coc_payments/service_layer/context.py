"""What the use cases work with: one ``Payments`` per runtime (built where the runtime is put to
work: ``register_api``, the ``import-camt053`` command), never a module-level cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from coc_shared.ids import BlockAllocator
from coc_shared.unit_of_work import UnitOfWork

from ..adapters import tables

if TYPE_CHECKING:
    from coc_shared.service import Runtime

CALLBACK_SERIES = "callback"


@dataclass(frozen=True)
class Payments:
    """The runtime's units of work, and the ids of the callbacks' audit rows: a hi/lo block
    allocator over ``id_blocks`` (series ``callback``), so that an id is known before its row is
    written (the claim of the notification id and the confirmation name it)."""

    runtime: Runtime
    callback_ids: BlockAllocator

    @classmethod
    def of(cls, runtime: Runtime) -> Payments:
        return cls(runtime, BlockAllocator(runtime.engine, tables.id_blocks, CALLBACK_SERIES))

    def unit_of_work(self, correlation_id: str | None = None) -> UnitOfWork:
        return self.runtime.unit_of_work(correlation_id=correlation_id)
