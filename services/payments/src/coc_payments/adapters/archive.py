"""The invoice archive (``archive.invoices``, ``archive_tables``) through a unit of work: payments
adds documents to it and never reads it (its role may not); the archive role's reader lists,
shows and checks them, and deletes those whose ten years are over."""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete, select

from coc_shared.db import insert_ignoring_conflicts

from .archive_tables import invoices


class ArchiveWriter:
    """Payments' side: INSERT only (ON CONFLICT DO NOTHING, no RETURNING: no right to read)."""

    def __init__(self, uow):
        self.uow = uow

    def add(self, rows: list[dict]) -> None:
        if rows:
            self.uow.execute(insert_ignoring_conflicts(self.uow.conn, invoices, rows))


class ArchiveReader:
    """The archive role's side, on a plain connection."""

    def __init__(self, conn):
        self.conn = conn

    def listed(self, order_id: str | None = None, buyer: str | None = None) -> list[dict]:
        t = invoices
        query = select(*[c for c in t.c if c.key not in ("data", "pdf")]).order_by(
            t.c.kind, t.c.seq
        )
        if order_id:
            query = query.where(t.c.order_id == order_id)
        if buyer:
            query = query.where(t.c.buyer_name.ilike(f"%{buyer}%"))
        return [dict(r._mapping) for r in self.conn.execute(query).all()]

    def get(self, number: str) -> dict | None:
        row = self.conn.execute(select(invoices).where(invoices.c.number == number)).first()
        return dict(row._mapping) if row else None

    def expired(self, today: date) -> list[str]:
        """The numbers of the documents whose retention ended before ``today``."""
        t = invoices
        query = select(t.c.number).where(t.c.retained_until < today).order_by(t.c.number)
        return list(self.conn.execute(query).scalars())

    def delete(self, numbers: list[str]) -> int:
        if not numbers:
            return 0
        return self.conn.execute(delete(invoices).where(invoices.c.number.in_(numbers))).rowcount

    def all(self) -> list[dict]:
        query = select(invoices).order_by(invoices.c.kind, invoices.c.seq)
        return [dict(r._mapping) for r in self.conn.execute(query).all()]
