"""The Ray host of one ticket category: the only writer of its seats and holds.

It drives an `Inventory` (the pure state machine) and adds the I/O around it: rebuild from
the ledger and the last snapshot, group-committed orders, expiry on its own timer,
write-behind snapshots, a coalesced change feed, and passivation when idle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import ray
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.config import EngineConfig
from actors.inventory import (
    Hold,
    HoldMismatch,
    HoldNotFound,
    Inventory,
    NotYourHold,
    Refusal,
    RefusalReason,
)
from actors.lockids import hold_lock_id, sale_lock_id
from actors.messages import (
    Availability,
    Buy,
    CancelOrder,
    CategoryChanged,
    Command,
    ConfirmHold,
    HoldPlaced,
    HoldsReleased,
    HoldView,
    OrderCancelled,
    OrderPlaced,
    Outcome,
    PlaceHold,
    Refused,
    ReleaseHold,
)
from persistence import catalog, ledger, snapshots
from persistence.database import create_engine
from persistence.ledger import PlacedOrder
from persistence.records import OrderDraft

log = logging.getLogger(__name__)

RECENT_REQUESTS = 10_000
LEDGER_REFUSAL = Refused(
    RefusalReason.LEDGER_UNAVAILABLE, "Orders cannot be recorded right now; try again"
)


class ActorRetired(Exception):
    """This activation is shutting down; the caller retries and gets a fresh one."""


class CategoryMissing(Exception):
    """The category does not exist (any more)."""


def actor_name(category_id: int) -> str:
    return f"category:{category_id}"


class _Pending:
    """One order waiting for the group commit: what to write and who waits for it."""

    __slots__ = ("draft", "lock_id", "result")

    def __init__(self, draft: OrderDraft, lock_id: str, result: asyncio.Future[PlacedOrder]):
        self.draft = draft
        self.lock_id = lock_id
        self.result = result


class CategoryActor:
    def __init__(self, config: EngineConfig, category_id: int) -> None:
        self._config = config
        self._category_id = category_id
        self._event_id = 0
        self._epoch = time.time_ns()
        self._inventory: Inventory | None = None
        self._missing = False
        self._retired = False
        self._db: AsyncEngine | None = None
        self._hub: Any = None
        self._loading: asyncio.Lock | None = None
        # request id -> outcome, so a retried call answers what the first one did
        self._recent: OrderedDict[str, Outcome] = OrderedDict()
        self._in_flight = 0
        self._last_call = time.monotonic()
        # orders being written, by lock id: a replay arriving meanwhile waits for the same one
        self._confirming: dict[str, asyncio.Future[PlacedOrder]] = {}
        # group commit
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        # change feed, coalesced
        self._feed_added: dict[str, HoldView] = {}
        self._feed_removed: set[str] = set()
        self._feed_dirty = False
        self._publisher: asyncio.Task[None] | None = None
        self._last_publish = 0.0
        # write-behind
        self._snapshot_version = -1
        self._housekeeper: asyncio.Task[None] | None = None

    # -- the one entry point: a batch of commands, answered in order ---------------------

    async def execute(self, commands: Sequence[Command]) -> list[Outcome]:
        inventory = await self._enter()
        try:
            return await self._execute(inventory, commands)
        finally:
            self._leave()

    async def ready(self) -> Availability:
        """Activate (rebuild) without changing anything; answers the current state."""
        inventory = await self._enter()
        self._leave()
        return self._availability(inventory)

    async def _execute(self, inventory: Inventory, commands: Sequence[Command]) -> list[Outcome]:
        now = time.time()
        loop = asyncio.get_running_loop()
        outcomes: list[Outcome | None] = [None] * len(commands)
        writes: list[tuple[int, ConfirmHold | Buy, str]] = []
        # replays of an order being written right now: they wait for it
        joins: list[tuple[int, asyncio.Future[PlacedOrder]]] = []
        lookups: list[tuple[int, ConfirmHold]] = []
        cancels: list[tuple[int, CancelOrder]] = []
        # Synchronous section: every seat decision happens here, with no await in between.
        for index, command in enumerate(commands):
            cached = self._recent.get(command.request_id)
            if cached is not None:
                outcomes[index] = cached
                continue
            try:
                if isinstance(command, PlaceHold):
                    outcomes[index] = self._place_hold(inventory, command, now)
                elif isinstance(command, ReleaseHold):
                    outcomes[index] = self._release(inventory, command)
                elif isinstance(command, ConfirmHold):
                    if self._joins(inventory, command.lock_id, command.owner):
                        joins.append((index, self._confirming[command.lock_id]))
                    elif inventory.get(command.lock_id) is None:
                        lookups.append((index, command))  # used already? the ledger knows
                    else:
                        self._begin_confirm(inventory, command, now)
                        writes.append((index, command, command.lock_id))
                        self._confirming[command.lock_id] = loop.create_future()
                elif isinstance(command, Buy):
                    lock_id = sale_lock_id(self._category_id, command.owner, command.request_id)
                    if self._joins(inventory, lock_id, command.owner):
                        joins.append((index, self._confirming[lock_id]))
                    else:
                        inventory.begin_sale(command.owner, command.draft.quantity, lock_id, now)
                        writes.append((index, command, lock_id))
                        self._confirming[lock_id] = loop.create_future()
                else:
                    cancels.append((index, command))
            except Refusal as refusal:
                outcomes[index] = Refused(refusal.reason, refusal.message)
        if writes:
            self._mark_changed(inventory)  # the confirming holds count as held meanwhile
            await self._settle_writes(inventory, writes, outcomes)
        for index, writing in joins:
            try:
                result = await asyncio.shield(writing)
            except Exception:
                outcomes[index] = LEDGER_REFUSAL
            else:
                outcomes[index] = OrderPlaced(result.record, self._availability(inventory), True)
        for index, confirm in lookups:
            outcomes[index] = await self._replayed_confirm(confirm)
        for index, cancel in cancels:
            outcomes[index] = await self._cancel(inventory, cancel)
        answered = [outcome for outcome in outcomes if outcome is not None]
        assert len(answered) == len(commands)
        for command, outcome in zip(commands, answered, strict=True):
            if isinstance(command, PlaceHold | ReleaseHold | CancelOrder):
                self._remember(command.request_id, outcome)
        return answered

    # -- holds ---------------------------------------------------------------------------

    def _place_hold(self, inventory: Inventory, command: PlaceHold, now: float) -> Outcome:
        lock_id = hold_lock_id(self._category_id, command.owner, command.request_id)
        hold = inventory.hold(
            command.owner, command.quantity, lock_id, now, self._config.lock_ttl_seconds
        )
        view = self._view(hold)
        self._mark_changed(inventory, added=(view,))
        return HoldPlaced(view, self._availability(inventory))

    def _release(self, inventory: Inventory, command: ReleaseHold) -> Outcome:
        if command.lock_id is not None:
            released = [inventory.release(command.lock_id, command.owner)]
        elif command.quantity is not None:
            released = inventory.release_quantity(command.owner, command.quantity)
        else:
            raise HoldNotFound("Name a lockId or a quantity to release")
        survivors = [inventory.get(hold.lock_id) for hold in released]
        self._mark_changed(
            inventory,
            added=[self._view(hold) for hold in survivors if hold is not None],
            removed=[hold.lock_id for hold in released if inventory.get(hold.lock_id) is None],
        )
        return HoldsReleased(tuple(self._view(h) for h in released), self._availability(inventory))

    def _begin_confirm(self, inventory: Inventory, command: ConfirmHold, now: float) -> None:
        hold = inventory.get(command.lock_id)
        if hold is not None and hold.owner == command.owner:
            draft = command.draft
            if draft.category_id != self._category_id or draft.event_id != self._event_id:
                raise HoldMismatch("This lock is for another event or category")
            if draft.quantity != hold.quantity:
                raise HoldMismatch(f"This lock holds {hold.quantity} tickets, not {draft.quantity}")
        inventory.begin_confirm(command.lock_id, command.owner, now)

    # -- orders: durable before anyone hears of them (invariant 4) -----------------------

    def _joins(self, inventory: Inventory, lock_id: str, owner: int) -> bool:
        """Is this the replay of an order whose write is in flight? Then it waits for it."""
        if lock_id not in self._confirming:
            return False
        hold = inventory.get(lock_id)
        if hold is not None and hold.owner != owner:
            raise NotYourHold("This lock belongs to another user")
        return True

    async def _settle_writes(
        self,
        inventory: Inventory,
        writes: list[tuple[int, ConfirmHold | Buy, str]],
        outcomes: list[Outcome | None],
    ) -> None:
        settled = [self._confirming[lock_id] for _, _, lock_id in writes]
        try:
            placed = await self._commit(
                [(command.draft, lock_id) for _, command, lock_id in writes]
            )
        except Exception as exc:
            # Only these orders fail, each back as it was; the rest of the batch stands.
            log.exception("the ledger refused %d orders", len(writes))
            for (index, command, lock_id), future in zip(writes, settled, strict=True):
                inventory.abort_confirm(lock_id)
                if isinstance(command, Buy):
                    inventory.release(lock_id, command.owner)
                del self._confirming[lock_id]
                future.set_exception(exc)
                future.exception()  # joiners look at it; nobody else needs to
                outcomes[index] = LEDGER_REFUSAL
            self._mark_changed(inventory)
            return
        removed = []
        for (index, command, lock_id), result, future in zip(writes, placed, settled, strict=True):
            if result.replayed:
                # The ledger already had this order: its seats are in `sold` already.
                inventory.abort_confirm(lock_id)
                inventory.release(lock_id, command.owner)
            else:
                inventory.finish_confirm(lock_id)
            del self._confirming[lock_id]
            future.set_result(result)
            removed.append(lock_id)
            outcomes[index] = OrderPlaced(
                result.record, self._availability(inventory), result.replayed
            )
        self._mark_changed(inventory, removed=removed)

    async def _commit(self, items: list[tuple[OrderDraft, str]]) -> list[PlacedOrder]:
        if not self._config.group_commit:
            # One transaction per order, as a naive host would: only for measuring the gain.
            return list(await asyncio.gather(*(self._commit_one(item) for item in items)))
        loop = asyncio.get_running_loop()
        pending = [_Pending(draft, lock_id, loop.create_future()) for draft, lock_id in items]
        self._queue.extend(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        return list(await asyncio.gather(*(p.result for p in pending)))

    async def _commit_one(self, item: tuple[OrderDraft, str]) -> PlacedOrder:
        async with self._require_db().begin() as conn:
            return (await ledger.insert_orders(conn, [item]))[0]

    async def _write_queued(self) -> None:
        """Every order queued while the previous transaction ran goes into the next one."""
        db = self._require_db()
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                async with db.begin() as conn:
                    placed = await ledger.insert_orders(conn, [(p.draft, p.lock_id) for p in batch])
            except Exception as exc:
                log.exception("group commit of %d orders failed", len(batch))
                for p in batch:
                    if not p.result.done():
                        p.result.set_exception(exc)
                continue
            for p, result in zip(batch, placed, strict=True):
                if not p.result.done():
                    p.result.set_result(result)

    async def _replayed_confirm(self, command: ConfirmHold) -> Outcome:
        """A lock that is gone may have become an order already (a retried call)."""
        async with self._require_db().connect() as conn:
            order = await ledger.find_order_by_lock_id(conn, command.lock_id)
        if order is not None and order.user_id == command.owner:
            return OrderPlaced(order, self._availability(self._require_inventory()), True)
        return Refused(RefusalReason.HOLD_NOT_FOUND, "Lock not found, expired or already used")

    async def _cancel(self, inventory: Inventory, command: CancelOrder) -> Outcome:
        async with self._require_db().begin() as conn:
            result = await ledger.cancel_order(conn, command.order_id)
        if result is None or result[0].category_id != self._category_id:
            return Refused(RefusalReason.ORDER_NOT_FOUND, "Order not found")
        order, changed = result
        if not changed:
            return Refused(RefusalReason.ORDER_ALREADY_CANCELLED, "Order is already cancelled")
        inventory.give_back(order.quantity)
        self._mark_changed(inventory)
        return OrderCancelled(order, self._availability(inventory))

    # -- activation, housekeeping, passivation ---------------------------------------------

    async def _enter(self) -> Inventory:
        if self._retired:
            raise ActorRetired(actor_name(self._category_id))
        self._in_flight += 1
        self._last_call = time.monotonic()
        try:
            inventory = self._inventory or await self._load()
        except BaseException:
            self._in_flight -= 1
            raise
        return inventory

    def _leave(self) -> None:
        self._in_flight -= 1
        self._last_call = time.monotonic()

    async def _load(self) -> Inventory:
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if self._inventory is not None:
                return self._inventory
            if self._missing:
                raise CategoryMissing(f"category {self._category_id} does not exist")
            if self._db is None:
                self._db = create_engine(
                    self._config.database_url, pool_size=self._config.actor_db_pool_size
                )
            async with self._db.connect() as conn:
                facts = await catalog.load_category_facts(conn, self._category_id)
                if facts is None:
                    self._missing = True
                    raise CategoryMissing(f"category {self._category_id} does not exist")
                sold = await ledger.sold_seats(conn, self._category_id)
                saved = await snapshots.load_snapshot(conn, self._category_id)
                holds = _holds_from(saved)
                confirmed = await ledger.confirmed_lock_ids(
                    conn, self._category_id, [h.lock_id for h in holds]
                )
            self._event_id = facts.event_id
            self._inventory = Inventory.restore(
                total=facts.total_seats,
                sold=sold,
                holds=holds,
                now=time.time(),
                version=_version_from(saved),
                confirmed_lock_ids=frozenset(confirmed),
            )
            self._hub = _feed_hub(self._config.namespace)
            self._housekeeper = asyncio.create_task(self._housekeep())
            self._mark_changed(self._inventory, full=True)
            log.info("category %s active: %s", self._category_id, self._inventory.snapshot())
            return self._inventory

    async def _housekeep(self) -> None:
        inventory = self._require_inventory()
        config = self._config
        while True:
            now = time.time()
            expired = inventory.expire_due(now)
            if expired:
                self._mark_changed(inventory, removed=[hold.lock_id for hold in expired])
            if inventory.version != self._snapshot_version:
                await self._save_snapshot(inventory)
            idle = time.monotonic() - self._last_call
            if idle >= config.actor_idle_seconds and self._can_passivate(inventory):
                await self._passivate(inventory)
                return
            wake = config.snapshot_interval_seconds
            next_expiry = inventory.next_expiry()
            if next_expiry is not None:
                wake = min(wake, max(next_expiry - now, 0.0) + 0.001)
            await asyncio.sleep(max(wake, 0.005))

    def _can_passivate(self, inventory: Inventory) -> bool:
        return (
            self._in_flight == 0
            and not inventory.holds()
            and not self._queue
            and (self._writer is None or self._writer.done())
        )

    async def _passivate(self, inventory: Inventory) -> None:
        """Save, tell the feed, and leave: the next call activates a fresh actor."""
        self._retired = True
        await self._save_snapshot(inventory)
        await self._flush_feed()
        if self._db is not None:
            await self._db.dispose()
        log.info("category %s passivated", self._category_id)
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

    async def _save_snapshot(self, inventory: Inventory) -> None:
        state = inventory.snapshot()
        payload = {
            "version": state.version,
            "sold": state.sold,
            "total": state.total,
            "holds": [
                {
                    "lockId": h.lock_id,
                    "owner": h.owner,
                    "quantity": h.quantity,
                    "expiresAt": h.expires_at,
                }
                for h in state.holds
            ],
        }
        try:
            async with self._require_db().begin() as conn:
                await snapshots.save_snapshot(conn, self._category_id, payload)
        except Exception:
            # Holds are write-behind: a failed snapshot is retried at the next tick.
            log.exception("snapshot of category %s failed", self._category_id)
            return
        self._snapshot_version = state.version

    # -- the change feed ------------------------------------------------------------------

    def _mark_changed(
        self,
        inventory: Inventory,
        added: Sequence[HoldView] = (),
        removed: Sequence[str] = (),
        full: bool = False,
    ) -> None:
        for lock_id in removed:
            self._feed_added.pop(lock_id, None)
            self._feed_removed.add(lock_id)
        for view in added:
            self._feed_removed.discard(view.lock_id)
            self._feed_added[view.lock_id] = view
        if full:
            for hold in inventory.holds():
                self._feed_added[hold.lock_id] = self._view(hold)
        self._feed_dirty = True
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish())

    async def _publish(self) -> None:
        """At most one feed item per interval; the latest state always goes out last."""
        interval = self._config.publish_interval_seconds
        while self._feed_dirty:
            wait = self._last_publish + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._flush_feed()

    async def _flush_feed(self) -> None:
        if not self._feed_dirty or self._inventory is None:
            return
        item = CategoryChanged(
            availability=self._availability(self._inventory),
            holds_added=tuple(self._feed_added.values()),
            holds_removed=tuple(self._feed_removed),
        )
        self._feed_added, self._feed_removed, self._feed_dirty = {}, set(), False
        self._last_publish = time.monotonic()
        try:
            await self._hub.publish.remote([item])
        except Exception:
            log.exception("publishing category %s failed", self._category_id)

    # -- small pieces ---------------------------------------------------------------------

    def _availability(self, inventory: Inventory) -> Availability:
        return Availability(
            event_id=self._event_id,
            category_id=self._category_id,
            total=inventory.total,
            held=inventory.held,
            sold=inventory.sold,
            version=inventory.version,
            at=time.time(),
            epoch=self._epoch,
        )

    def _view(self, hold: Hold) -> HoldView:
        return HoldView(
            lock_id=hold.lock_id,
            owner=hold.owner,
            event_id=self._event_id,
            category_id=self._category_id,
            quantity=hold.quantity,
            expires_at=hold.expires_at,
        )

    def _remember(self, request_id: str, outcome: Outcome) -> None:
        self._recent[request_id] = outcome
        if len(self._recent) > RECENT_REQUESTS:
            self._recent.popitem(last=False)

    def _require_db(self) -> AsyncEngine:
        assert self._db is not None, "the actor is not loaded"
        return self._db

    def _require_inventory(self) -> Inventory:
        assert self._inventory is not None, "the actor is not loaded"
        return self._inventory


def _version_from(saved: dict[str, Any] | None) -> int:
    try:
        return max(int((saved or {}).get("version", 0)), 0)
    except (TypeError, ValueError):
        return 0


def _holds_from(saved: dict[str, Any] | None) -> list[Hold]:
    """The holds of a snapshot; a row that is not one (hand-edited, older format) is skipped:
    holds are ephemeral, and a bad snapshot must never keep a category from activating."""
    rows = saved.get("holds") if saved else None
    if not isinstance(rows, list):
        return []
    holds = []
    for row in rows:
        try:
            holds.append(
                Hold(
                    lock_id=str(row["lockId"]),
                    owner=int(row["owner"]),
                    quantity=int(row["quantity"]),
                    expires_at=float(row["expiresAt"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            log.warning("skipping a malformed hold in a snapshot: %r", row)
    return [hold for hold in holds if hold.quantity > 0]


def _feed_hub(namespace: str) -> Any:
    from actors.feed import hub_handle

    return hub_handle(namespace)


def category_actor_class() -> Any:
    """The Ray actor class, options applied in one place."""
    options: dict[str, Any] = {
        "num_cpus": 0,
        "max_restarts": -1,
        "max_task_retries": 0,
        "max_concurrency": 1000,
    }
    return ray.remote(**options)(CategoryActor)
