"""The orders ledger: the durable truth of what was sold, and the sold-seats counter beside it.

`insert_orders` is the group-commit primitive: many confirms become one INSERT in the
caller's transaction, idempotent on lock id and request key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from psycopg.errors import CheckViolation
from sqlalchemy import Integer, bindparam, column, func, or_, select, update, values
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.arrays import among
from persistence.errors import CategoryGone, OversellRefused
from persistence.models import SOLD_WITHIN_TOTAL, events, orders, ticket_categories
from persistence.records import OrderDraft, OrderRecord, OrderStatus, PlacedOrder

CENT = Decimal("0.01")


def _record(row: Any) -> OrderRecord:
    return OrderRecord(
        id=row.id,
        user_id=row.user_id,
        event_id=row.event_id,
        category_id=row.category_id,
        quantity=row.quantity,
        unit_price=row.unit_price,
        total_price=row.total_price,
        status=OrderStatus(row.status),
        event_name=row.event_name,
        category_name=row.category_name,
        notes=row.notes,
        lock_id=row.lock_id,
        request_key=row.request_key,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# The columns an order is written with, and the INSERT that takes a whole batch as one array per
# column (`unnest`). Its text is the same for any batch size, so PostgreSQL and psycopg parse
# it once. A VALUES list of 1,000 rows was 14,000 placeholders, re-converted on every group
# commit: 56% of the actor's time in `_write_orders` went to psycopg splitting that query.
INSERTED = (
    "user_id", "event_id", "category_id", "quantity", "unit_price", "total_price", "status",
    "event_name", "category_name", "notes", "lock_id", "request_key",
)  # fmt: skip
_INCOMING = (
    func.unnest(*(bindparam(name, type_=ARRAY(orders.c[name].type)) for name in INSERTED))
    .table_valued(*(column(name, orders.c[name].type) for name in INSERTED))
    .render_derived("incoming")
)
INSERT_BATCH = (
    insert(orders)
    .from_select(list(INSERTED), select(*(_INCOMING.c[name] for name in INSERTED)))
    .on_conflict_do_nothing()
    .returning(*orders.c)
)


def _row_values(draft: OrderDraft, lock_id: str | None) -> dict[str, Any]:
    unit_price = Decimal(draft.unit_price).quantize(CENT)
    return {
        "user_id": draft.user_id,
        "event_id": draft.event_id,
        "category_id": draft.category_id,
        "quantity": draft.quantity,
        "unit_price": unit_price,
        "total_price": (unit_price * draft.quantity).quantize(CENT),
        "status": OrderStatus.PENDING.value,
        "event_name": draft.event_name,
        "category_name": draft.category_name,
        "notes": draft.notes,
        "lock_id": lock_id,
        "request_key": draft.request_key,
    }


async def insert_orders(
    conn: AsyncConnection, items: Sequence[tuple[OrderDraft, str | None]]
) -> list[PlacedOrder]:
    """Write many orders in one statement; results follow the input order.

    An item whose lock id or request key is already in the ledger (or earlier in this same
    batch) is a replay: it gets the existing row and sells nothing. The seats of the rows
    inserted now are added to `ticket_categories.sold_seats` in the same transaction, whose
    CHECK turns an oversell into OversellRefused.
    """
    if not items:
        return []
    rows = [_row_values(draft, lock_id) for draft, lock_id in items]
    columns = {name: [row[name] for row in rows] for name in INSERTED}
    inserted = list(await conn.execute(INSERT_BATCH, columns))

    by_lock = {row.lock_id: row for row in inserted if row.lock_id is not None}
    by_key = {row.request_key: row for row in inserted if row.request_key is not None}
    # Rows without either key never conflict; RETURNING yields them in the arrays' order.
    keyless = iter(row for row in inserted if row.lock_id is None and row.request_key is None)

    placed: list[PlacedOrder | None] = []
    claimed: set[int] = set()
    missing: list[int] = []
    for index, values_ in enumerate(rows):
        lock_id, request_key = values_["lock_id"], values_["request_key"]
        if lock_id is None and request_key is None:
            placed.append(PlacedOrder(_record(next(keyless)), replayed=False))
            continue
        row = by_lock.get(lock_id) if lock_id is not None else by_key.get(request_key)
        if row is not None and row.id not in claimed and _same_keys(row, values_):
            claimed.add(row.id)
            placed.append(PlacedOrder(_record(row), replayed=False))
        else:
            placed.append(None)
            missing.append(index)

    if missing:
        existing = await _existing_by_keys(conn, [rows[index] for index in missing])
        for index in missing:
            row = _match(existing, rows[index])
            if row is None:  # pragma: no cover - ON CONFLICT only skips rows that have a match
                raise RuntimeError("an order skipped as a conflict has no conflicting row")
            placed[index] = PlacedOrder(_record(row), replayed=True)

    await _add_sold(conn, ((row.category_id, row.quantity) for row in inserted))
    return [item for item in placed if item is not None]


def _same_keys(row: Any, values_: dict[str, Any]) -> bool:
    return bool(row.lock_id == values_["lock_id"] and row.request_key == values_["request_key"])


def _match(existing: list[Any], values_: dict[str, Any]) -> Any | None:
    lock_id, request_key = values_["lock_id"], values_["request_key"]
    for row in existing:
        if lock_id is not None and row.lock_id == lock_id:
            return row
    for row in existing:
        if request_key is not None and row.request_key == request_key:
            return row
    return None


async def _existing_by_keys(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[Any]:
    lock_ids = sorted({row["lock_id"] for row in rows if row["lock_id"] is not None})
    request_keys = sorted({row["request_key"] for row in rows if row["request_key"] is not None})
    conditions = []
    if lock_ids:
        conditions.append(among(orders.c.lock_id, lock_ids))
    if request_keys:
        conditions.append(among(orders.c.request_key, request_keys))
    statement = select(orders).where(or_(*conditions))
    return list(await conn.execute(statement))


async def _add_sold(conn: AsyncConnection, sold: Iterable[tuple[int, int]]) -> None:
    delta: dict[int, int] = defaultdict(int)
    for category_id, quantity in sold:
        delta[category_id] += quantity
    if not delta:
        return
    delta_rows = values(
        column("category_id", Integer), column("quantity", Integer), name="delta_rows"
    ).data(sorted(delta.items()))
    statement = (
        update(ticket_categories)
        .where(ticket_categories.c.id == delta_rows.c.category_id)
        .values(sold_seats=ticket_categories.c.sold_seats + delta_rows.c.quantity)
    )
    try:
        result = await conn.execute(statement)
    except IntegrityError as error:
        if (
            isinstance(error.orig, CheckViolation)
            # endswith: a schema migrated before names were pinned carries a doubled prefix.
            and (error.orig.diag.constraint_name or "").endswith(SOLD_WITHIN_TOTAL)
        ):
            raise OversellRefused(delta) from error
        raise
    if result.rowcount != len(delta):
        # A category deleted under the orders: refuse them all (the caller's transaction aborts).
        raise CategoryGone(delta)


async def cancel_order(
    conn: AsyncConnection, order_id: int, *, only_pending: bool = False
) -> tuple[OrderRecord, bool] | None:
    """Cancel once: (order, True) if cancelled now, (order, False) if it already was (or, with
    `only_pending`, if it is no longer pending: a declined payment never cancels an order that
    another gateway completed meanwhile)."""
    still = (
        orders.c.status == OrderStatus.PENDING.value
        if only_pending
        else orders.c.status != OrderStatus.CANCELLED.value
    )
    statement = (
        update(orders)
        .where(orders.c.id == order_id, still)
        .values(status=OrderStatus.CANCELLED.value, updated_at=func.clock_timestamp())
        .returning(*orders.c)
    )
    row = (await conn.execute(statement)).first()
    if row is not None:
        await conn.execute(
            update(ticket_categories)
            .where(ticket_categories.c.id == row.category_id)
            .values(sold_seats=ticket_categories.c.sold_seats - row.quantity)
        )
        return _record(row), True
    current = await get_order(conn, order_id)
    return None if current is None else (current, False)


async def complete_order(conn: AsyncConnection, order_id: int) -> OrderRecord | None:
    """pending → completed; None when the order is absent or not pending."""
    completed = await complete_orders(conn, [order_id])
    return completed[0] if completed else None


async def complete_orders(conn: AsyncConnection, order_ids: Sequence[int]) -> list[OrderRecord]:
    """pending → completed for many orders in one statement; returns those that moved."""
    if not order_ids:
        return []
    statement = (
        update(orders)
        .where(among(orders.c.id, order_ids), orders.c.status == OrderStatus.PENDING.value)
        .values(status=OrderStatus.COMPLETED.value, updated_at=func.clock_timestamp())
        .returning(*orders.c)
    )
    return [_record(row) for row in await conn.execute(statement)]


async def get_order(conn: AsyncConnection, order_id: int) -> OrderRecord | None:
    row = (await conn.execute(select(orders).where(orders.c.id == order_id))).first()
    return None if row is None else _record(row)


async def find_order_by_request_key(conn: AsyncConnection, key: str) -> OrderRecord | None:
    row = (await conn.execute(select(orders).where(orders.c.request_key == key))).first()
    return None if row is None else _record(row)


async def find_order_by_lock_id(conn: AsyncConnection, lock_id: str) -> OrderRecord | None:
    row = (await conn.execute(select(orders).where(orders.c.lock_id == lock_id))).first()
    return None if row is None else _record(row)


async def orders_by_lock_ids(
    conn: AsyncConnection, lock_ids: Sequence[str]
) -> dict[str, OrderRecord]:
    if not lock_ids:
        return {}
    statement = select(orders).where(among(orders.c.lock_id, set(lock_ids)))
    return {row.lock_id: _record(row) for row in await conn.execute(statement)}


async def list_orders(
    conn: AsyncConnection,
    *,
    user_id: int | None = None,
    event_id: int | None = None,
    visible_to: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[OrderRecord]:
    """Newest first. visible_to=X keeps orders X placed or placed for events X created."""
    statement = (
        select(orders).order_by(orders.c.created_at.desc(), orders.c.id.desc()).offset(offset)
    )
    if user_id is not None:
        statement = statement.where(orders.c.user_id == user_id)
    if event_id is not None:
        statement = statement.where(orders.c.event_id == event_id)
    if visible_to is not None:
        created_by_viewer = (
            select(events.c.id)
            .where(events.c.id == orders.c.event_id, events.c.created_by == visible_to)
            .exists()
        )
        statement = statement.where(or_(orders.c.user_id == visible_to, created_by_viewer))
    if limit is not None:
        statement = statement.limit(limit)
    return [_record(row) for row in await conn.execute(statement)]


async def claim_orders(
    conn: AsyncConnection, order_ids: Sequence[int], lease_seconds: float
) -> list[OrderRecord]:
    """Claim these pending orders for the payment step, unless another gateway holds a live
    claim on them; returns those claimed now (the claim lasts `lease_seconds`)."""
    if not order_ids:
        return []
    return await _claim(conn, among(orders.c.id, order_ids), lease_seconds, limit=len(order_ids))


async def claim_stuck_orders(
    conn: AsyncConnection, *, older_than: float, lease_seconds: float, limit: int = 100
) -> list[OrderRecord]:
    """Claim pending orders nobody is processing: unclaimed for `older_than` seconds since they
    were written, or whose claim has lapsed (its gateway died). Oldest first; rows another
    sweep is claiming right now are skipped, not waited for."""
    born = orders.c.created_at < func.now() - _seconds(older_than)
    return await _claim(conn, born, lease_seconds, limit=limit)


async def complete_unclaimed_orders(
    conn: AsyncConnection, order_ids: Sequence[int], lease_seconds: float
) -> set[int]:
    """pending → completed, in one statement, for those of these orders no gateway holds a
    live claim on: a claim and its completion at once, for a payment step with nothing to wait
    for. Returns the ids that moved; each moves once, whoever else tries."""
    if not order_ids:
        return set()
    statement = (
        update(orders)
        .where(
            among(orders.c.id, order_ids),
            orders.c.status == OrderStatus.PENDING.value,
            _unclaimed(lease_seconds),
        )
        .values(status=OrderStatus.COMPLETED.value, updated_at=func.clock_timestamp())
        .returning(orders.c.id)
    )
    return set((await conn.execute(statement)).scalars())


def _unclaimed(lease_seconds: float) -> Any:
    return or_(
        orders.c.claimed_at.is_(None), orders.c.claimed_at < func.now() - _seconds(lease_seconds)
    )


def _seconds(value: float) -> Any:
    return func.make_interval(0, 0, 0, 0, 0, 0, value)


async def _claim(
    conn: AsyncConnection, which: Any, lease_seconds: float, *, limit: int
) -> list[OrderRecord]:
    candidates = (
        select(orders.c.id)
        .where(orders.c.status == OrderStatus.PENDING.value, which, _unclaimed(lease_seconds))
        .order_by(orders.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(orders)
        .where(orders.c.id.in_(candidates))
        .values(claimed_at=func.now())
        .returning(*orders.c)
    )
    return sorted((_record(row) for row in await conn.execute(statement)), key=lambda o: o.id)


async def pending_orders(conn: AsyncConnection, limit: int = 100) -> list[OrderRecord]:
    """Oldest pending orders first: what a restarted processor must finish."""
    statement = (
        select(orders)
        .where(orders.c.status == OrderStatus.PENDING.value)
        .order_by(orders.c.id)
        .limit(limit)
    )
    return [_record(row) for row in await conn.execute(statement)]


async def sold_seats(conn: AsyncConnection, category_id: int) -> int:
    """Seats sold in a category, counted from the order rows themselves (not the counter)."""
    statement = select(func.coalesce(func.sum(orders.c.quantity), 0)).where(
        orders.c.category_id == category_id,
        orders.c.status != OrderStatus.CANCELLED.value,
    )
    return int((await conn.execute(statement)).scalar_one())


async def confirmed_lock_ids(
    conn: AsyncConnection, category_id: int, lock_ids: Iterable[str]
) -> set[str]:
    """Which of these holds already became orders (whatever the order's status now)."""
    wanted = list(lock_ids)
    if not wanted:
        return set()
    statement = select(orders.c.lock_id).where(
        orders.c.category_id == category_id, among(orders.c.lock_id, wanted)
    )
    found: list[str | None] = list((await conn.execute(statement)).scalars())
    return {lock_id for lock_id in found if lock_id is not None}
