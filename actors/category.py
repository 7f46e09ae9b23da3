"""The Ray host of one ticket category: the only writer of its seats and holds.

A shell, as Ray Serve's controller is over its state managers: the `Desk` decides every
batch synchronously; the actor adds the I/O around it, each job a plain class it drives:
`rebuild` (activation), `GroupCommit` (orders durable before anyone hears of them),
`HoldJournal` (every answered hold change durable with its batch), `FeedBatcher` (the
coalesced change feed), `Snapshotter` (write-behind holds, the journal's compaction point),
`RecentReplies` (a retried call answered once) and `Activity` (passivation when idle).

When the actor cannot know what is durable (a journal write failed, a commit's outcome is
unknown, the ledger cannot be read) it retires: a fresh activation rebuilds from the ledger,
the last snapshot and the journal, and the callers' retries carry the same request ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from actors import spares
from actors.activation import Activity, rebuild
from actors.config import ActorConfig
from actors.desk import LEDGER_REFUSAL, Decision, Desk
from actors.feed import FeedHub
from actors.feed_batcher import FeedBatcher
from actors.group_commit import GroupCommit, OrderItem
from actors.journal import HoldJournal
from actors.messages import (
    ActorReport,
    Availability,
    CancelOrder,
    Command,
    ConfirmHold,
    HoldView,
    OrderPlaced,
    Outcome,
    PlaceHold,
    Refused,
    ReleaseHold,
)
from actors.refusals import RefusalReason
from actors.remote import HubHandle, Missing, Retired, retire_current_actor, wake_current_actor
from actors.replies import RecentReplies
from actors.snapshotter import Snapshotter
from actors.telemetry import ActorStats
from actors.waitlist_sweeper import WaitlistSweeper
from persistence import audit, catalog, hold_journal, ledger, snapshots, waitlist
from persistence.database import create_engine
from persistence.errors import CategoryGone, OversellRefused
from persistence.hold_journal import JournalEntry
from persistence.pickling import pack, unpack
from persistence.records import OrderStatus, PlacedOrder
from persistence.snapshots import CategorySnapshot

log = logging.getLogger(__name__)

REPORT_TIMEOUT_SECONDS = 1.0  # the last metrics report before passivating


class CategoryActor:
    def __init__(
        self,
        config: ActorConfig,
        category_id: int,
        retire: Callable[[], None] = retire_current_actor,
        wake: Callable[[], None] = wake_current_actor,
    ) -> None:
        self._config = config
        self._retire_process = retire
        self._category_id = category_id
        self._epoch = time.time_ns()
        self._desk: Desk | None = None
        self._missing = False
        self._db: AsyncEngine | None = None
        self._loading: asyncio.Lock | None = None
        self._activity = Activity()
        self._replies = RecentReplies()
        # orders being written, by lock id: a replay arriving meanwhile waits for the same one
        self._writing: dict[str, asyncio.Future[PlacedOrder]] = {}
        self._commits = GroupCommit(self._write_orders, grouped=config.group_commit)
        hub = HubHandle(config.namespace, FeedHub, config.call_timeout_seconds)
        self._hub = hub
        self._stats = ActorStats()
        self._reporting: asyncio.Task[None] | None = None
        self._feed = FeedBatcher(
            hub.publish, self._state, config.publish_interval_seconds, holds=self._live_holds
        )
        self._journal = HoldJournal(self._append_journal)
        self._snapshots = Snapshotter(
            self._save_snapshot,
            lambda: self._journal.durable_seq,
            interval=config.snapshot_interval_seconds,
            # Without the journal, snapshots are all that keeps holds: taken on every change.
            journaled=(lambda: self._journal.noted) if config.hold_journal else None,
        )
        self._waitlist = WaitlistSweeper(self._delete_waitlist_rows)
        self._housekeeper: asyncio.Task[None] | None = None
        self._reaper: asyncio.Task[None] | None = None
        # Expiries and the announcement at activation reach the feed but not the journal:
        # activation drops expired holds by itself and already has the rest.
        self._unjournaled = False
        # Restarted by Ray after a crash: load now, so its holds expire with nobody calling.
        wake()
        # This process may have been a spare: the next activation on this node gets another.
        spares.restock_after_start(config.spare_workers)

    # -- the one entry point: a batch of commands, answered in order ---------------------

    async def execute(self, batch: bytes) -> bytes:
        """`batch` is a list of commands packed by `persistence.pickling.pack`; the answer is
        their outcomes, in order, packed the same way. Ray's cloudpickle of the same objects
        cost several times as much on both sides of every call."""
        commands: Sequence[Command] = unpack(batch)
        desk = await self._enter()
        try:
            return pack(await self._run(desk, commands))
        finally:
            self._activity.leave()

    async def ready(self) -> Availability:
        """Activate (rebuild) without changing anything; answers the current state."""
        desk = await self._enter()
        self._activity.leave()
        return desk.availability()

    async def republish(self) -> bool:
        """Send the whole state to the feed (a restarted hub asks); never activates."""
        if self._desk is None or self._activity.retired:
            return False
        self._feed.republish()
        return True

    async def _run(self, desk: Desk, commands: Sequence[Command]) -> list[Outcome]:
        decision = desk.decide(commands, time.time(), self._replies, self._writing)
        loop = asyncio.get_running_loop()
        for write in decision.writes:
            self._writing[write.lock_id] = loop.create_future()
        # Taken before any await: a write in flight may finish (and leave `_writing`) meanwhile.
        joining = [(index, self._writing[lock_id]) for index, lock_id in decision.joins]
        # Started now, so it carries exactly what this batch (and any before it) changed.
        journaled = asyncio.ensure_future(self._journal.flush())
        if decision.writes:
            await self._write(desk, decision)
        try:
            await journaled
        except Exception:
            # Whether the changes are durable is unknown: answering would be a guess.
            self._give_up("its hold journal could not be written")
        outcomes = decision.outcomes
        for index, writing in joining:
            try:
                result = await asyncio.shield(writing)
            except Exception:
                outcomes[index] = LEDGER_REFUSAL
            else:
                outcomes[index] = OrderPlaced(result.record, desk.availability(), True)
        for index, confirm in decision.lookups:
            outcomes[index] = await self._replayed_confirm(desk, confirm)
        if decision.sale_lookups:
            await self._replayed_sales(desk, decision)
        for index, cancel in decision.cancels:
            outcomes[index] = await self._cancel(desk, cancel)
        answered = [outcome for outcome in outcomes if outcome is not None]
        assert len(answered) == len(commands)
        telling = log.isEnabledFor(logging.INFO)  # off by default in a Ray worker: free
        for command, outcome in zip(commands, answered, strict=True):
            if isinstance(command, PlaceHold | ReleaseHold | CancelOrder):
                self._replies.remember(command.request_id, outcome)
            if telling and isinstance(outcome, Refused):
                log.info(
                    "category %s refused %s (request %s): %s",
                    self._category_id,
                    type(command).__name__,
                    command.trace or "-",
                    outcome.reason.value,
                )
        return answered

    # -- orders: durable before anyone hears of them (invariant 4) -----------------------

    async def _write(self, desk: Desk, decision: Decision) -> None:
        futures = [self._writing[write.lock_id] for write in decision.writes]
        try:
            placed = await self._commits.commit(
                [(write.command.draft, write.lock_id) for write in decision.writes]
            )
        except Exception as exc:
            if not _refused_by_ledger(exc):
                # The commit may have happened (a connection lost after the server committed):
                # undoing would put `sold` below the ledger. A fresh activation reads it.
                for write, future in zip(decision.writes, futures, strict=True):
                    del self._writing[write.lock_id]
                    future.set_exception(exc)
                    future.exception()
                self._give_up("the outcome of an order commit is unknown")
            # Only these orders fail, each back as it was; the rest of the batch stands.
            log.exception(
                "the ledger refused %d orders (requests %s)",
                len(decision.writes),
                " ".join(write.command.trace or "-" for write in decision.writes),
            )
            desk.undo(decision)
            for write, future in zip(decision.writes, futures, strict=True):
                del self._writing[write.lock_id]
                future.set_exception(exc)
                future.exception()  # joiners look at it; nobody else needs to
            return
        desk.settle(decision, placed)
        for write, future, result in zip(decision.writes, futures, placed, strict=True):
            del self._writing[write.lock_id]
            future.set_result(result)

    async def _write_orders(self, items: list[OrderItem]) -> list[PlacedOrder]:
        started = time.perf_counter()
        async with self._require_db().begin() as conn:
            placed = await ledger.insert_orders(conn, items)
        self._stats.committed(len(items), time.perf_counter() - started)
        return placed

    async def _replayed_confirm(self, desk: Desk, command: ConfirmHold) -> Outcome:
        """A lock that is gone may have become an order already (a retried call)."""
        async with self._require_db().connect() as conn:
            order = await ledger.find_order_by_lock_id(conn, command.lock_id)
        if order is not None and order.user_id == command.owner:
            return OrderPlaced(order, desk.availability(), True)
        return Refused(RefusalReason.HOLD_NOT_FOUND, "Lock not found, expired or already used")

    async def _replayed_sales(self, desk: Desk, decision: Decision) -> None:
        """A Buy retried after its order was written (the reply was lost with an actor): the
        seats it took are the ones missing now, so the ledger answers before the refusal.
        One query for the whole batch: a sold-out sale refuses many buys at once."""
        lock_ids = [lock_id for _, lock_id, _ in decision.sale_lookups]
        async with self._require_db().connect() as conn:
            found = await ledger.orders_by_lock_ids(conn, lock_ids)
        for index, lock_id, refused in decision.sale_lookups:
            order = found.get(lock_id)
            placed = None if order is None else OrderPlaced(order, desk.availability(), True)
            decision.outcomes[index] = placed or refused

    async def _cancel(self, desk: Desk, command: CancelOrder) -> Outcome:
        async with self._require_db().begin() as conn:
            result = await ledger.cancel_order(
                conn, command.order_id, only_pending=command.only_pending
            )
            if result is not None and result[1] and result[0].category_id == self._category_id:
                await audit.order_cancelled(conn, result[0], command.by)
        if result is None or result[0].category_id != self._category_id:
            return Refused(RefusalReason.ORDER_NOT_FOUND, "Order not found")
        order, changed = result
        if not changed and order.status is not OrderStatus.CANCELLED:
            return Refused(RefusalReason.ORDER_NOT_FOUND, "Order is no longer pending")
        if not changed:
            return Refused(RefusalReason.ORDER_ALREADY_CANCELLED, "Order is already cancelled")
        return desk.cancelled(order)

    # -- activation, housekeeping, passivation ---------------------------------------------

    async def _enter(self) -> Desk:
        self._activity.enter()
        try:
            return self._desk or await self._load()
        except BaseException:
            self._activity.leave()
            raise

    async def _load(self) -> Desk:
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if self._desk is not None:
                return self._desk
            if self._missing:
                raise Missing(f"category {self._category_id} does not exist")
            if self._db is None:
                connections = self._config.actor_db_connections
                self._db = create_engine(
                    self._config.database_url, pool_size=connections, max_overflow=0
                )
            started = time.perf_counter()
            try:
                async with self._db.connect() as conn:
                    rebuilt = await rebuild(conn, self._category_id, time.time())
            except Missing:
                self._missing = True
                raise
            except Exception:
                # PostgreSQL down or out of connections: callers retry (and answer 503 in the
                # end); an actor nobody calls any more must not stay alive unloaded forever.
                log.exception("category %s could not be loaded", self._category_id)
                if self._reaper is None or self._reaper.done():
                    self._reaper = asyncio.create_task(self._reap_unloaded())
                raise
            desk = Desk(
                rebuilt.inventory,
                event_id=rebuilt.facts.event_id,
                category_id=self._category_id,
                epoch=self._epoch,
                lock_ttl_seconds=self._config.lock_ttl_seconds,
                changed=self._changed,
                facts=rebuilt.facts,
                offer_ttl_seconds=self._config.waitlist_offer_seconds,
                rehold_cooldown_seconds=self._config.rehold_cooldown_seconds,
                consumed=self._waitlist.consumed,
            )
            desk.on_sale = rebuilt.facts.is_active
            self._journal.durable_seq = rebuilt.journal_seq
            self._journal.noted = rebuilt.replayed  # still in the journal, not compacted yet
            self._desk = desk
            self._stats.activation_seconds = time.perf_counter() - started
            self._housekeeper = asyncio.create_task(self._housekeep(desk))
            # The whole state, as a complete item: mirrors drop holds a previous activation
            # announced that did not survive (expired while the actor was away).
            self._feed.republish()
            log.info("category %s active: %s", self._category_id, rebuilt.inventory.snapshot())
            return desk

    async def _reap_unloaded(self) -> None:
        idle = self._config.actor_idle_seconds
        while self._desk is None:
            await asyncio.sleep(max(idle - self._activity.idle_for(), 0.05))
            if self._desk is None and self._activity.idle_for() >= idle:
                log.info("category %s retires unloaded", self._category_id)
                self._give_up("it could not be loaded and nobody calls", raising=False)
                return

    def _changed(self, added: Sequence[HoldView], removed: Sequence[str]) -> None:
        self._feed.mark(added, removed)
        if not self._unjournaled and self._config.hold_journal:
            self._journal.note(added, removed)

    @contextmanager
    def _unjournaled_changes(self) -> Iterator[None]:
        self._unjournaled = True
        try:
            yield
        finally:
            self._unjournaled = False

    def _give_up(self, why: str, *, raising: bool = True) -> None:
        """Leave without answering: in Ray the process ends here, and every caller retries
        its batch (same request ids) on a fresh activation that rebuilds what is durable."""
        if not self._activity.retired:  # once: a batch and the housekeeper may both see it
            log.error("category %s retires: %s", self._category_id, why)
            self._activity.retired = True
            if self._housekeeper is not None and self._housekeeper is not asyncio.current_task():
                self._housekeeper.cancel()  # no snapshot of what may not be durable
            self._retire_process()
        if raising:
            raise Retired(f"category {self._category_id} retired: {why}")

    async def _housekeep(self, desk: Desk) -> None:
        config = self._config
        catalogue_read = time.monotonic()
        while True:
            now = time.time()
            with self._unjournaled_changes():
                expired = desk.expire_holds(now)  # activation drops expired holds by itself
            # Seats an expiry freed go to the waiting list first: an offer is a hold its buyer
            # is told about, so it is journaled like any other. Only after an expiry: at
            # activation the list can hold the row of a join not yet decided (the row is
            # written before the actor is called), and that join's own batch serves it.
            if expired:
                desk.serve_waiting(now)
            if expired and not self._journal.idle:
                try:
                    await self._journal.flush()
                except Exception:
                    self._give_up("its hold journal could not be written", raising=False)
                    return
            await self._snapshots.save_if_changed(desk.inventory)
            self._report()
            if time.monotonic() - catalogue_read >= config.catalogue_refresh_seconds:
                catalogue_read = time.monotonic()
                await self._refresh_catalogue(desk)
            idle = self._activity.idle_for() >= config.actor_idle_seconds
            if idle and self._can_passivate(desk) and await self._passivate(desk):
                return
            wake = config.snapshot_interval_seconds
            next_expiry = desk.inventory.next_expiry()
            if next_expiry is not None:
                wake = min(wake, max(next_expiry - now, 0.0) + 0.001)
            await asyncio.sleep(max(wake, 0.005))

    async def _refresh_catalogue(self, desk: Desk) -> None:
        """A deactivated or deleted event stops selling here even if a gateway's catalogue is
        stale (the ledger's foreign key refuses the orders of a deleted category anyway)."""
        try:
            async with self._require_db().connect() as conn:
                facts = await catalog.load_category_facts(conn, self._category_id)
        except Exception:
            log.warning("category %s: the catalogue could not be read", self._category_id)
            return
        desk.on_sale = facts is not None and facts.is_active

    def _can_passivate(self, desk: Desk) -> bool:
        return (
            self._activity.in_flight == 0
            and desk.inventory.held == 0  # no live hold (each holds a seat at least)
            and self._waitlist.idle
            and self._commits.idle
            and self._journal.idle
            and not self._writing
        )

    async def _passivate(self, desk: Desk) -> bool:
        """Save, tell the feed, and leave: the next call activates a fresh actor. Stays (False)
        while the hub cannot take its last state: followers would keep a stale one."""
        self._activity.retired = True
        await self._snapshots.save(desk.inventory)
        # Not idle after a flush that went through: the publisher's own send is still on its
        # way (it may fail, or meet a restarted hub), or this one met a restarted hub, which
        # must get the whole state first (followers keep what they knew until it comes).
        if not await self._feed.flush() or not self._feed.idle:
            self._activity.retired = False
            return False
        await self._last_report()  # only once it really leaves: the gateways count it gone
        if self._db is not None:
            await self._db.dispose()
        log.info("category %s passivated", self._category_id)
        retire_current_actor()
        return True

    def _report(self) -> None:
        """Metrics for the gateways, when due: sent beside housekeeping, never awaited by it
        (expiries must not wait on the feed), one at a time."""
        if self._reporting is not None and not self._reporting.done():
            return
        report = self._stats.report(self._category_id)
        if report is not None:
            self._reporting = asyncio.create_task(self._send_report(report))

    async def _last_report(self) -> None:
        report = self._stats.report(self._category_id, live=False)
        if report is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._send_report(report), REPORT_TIMEOUT_SECONDS)

    async def _send_report(self, report: ActorReport) -> None:
        try:
            await self._hub.publish([report])
        except Exception:
            log.warning("category %s: metrics report not sent", self._category_id)

    async def _delete_waitlist_rows(self, entry_ids: list[int]) -> None:
        async with self._require_db().begin() as conn:
            await waitlist.remove_entries(conn, entry_ids)

    async def _save_snapshot(self, snapshot: CategorySnapshot) -> None:
        async with self._require_db().begin() as conn:
            await snapshots.save_snapshot(
                conn, self._category_id, snapshots.encode_snapshot(snapshot)
            )
            await hold_journal.truncate(conn, self._category_id, snapshot.journal_seq)

    async def _append_journal(self, entries: list[JournalEntry]) -> int | None:
        # One statement in autocommit: one round trip instead of BEGIN, INSERT, COMMIT.
        async with self._require_db().connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            return await hold_journal.append(conn, self._category_id, entries)

    def _live_holds(self) -> list[HoldView]:
        return [] if self._desk is None else self._desk.live_holds()

    def _state(self) -> Availability | None:
        return None if self._desk is None else self._desk.availability()

    def _require_db(self) -> AsyncEngine:
        assert self._db is not None, "the actor is not loaded"
        return self._db


def _refused_by_ledger(exc: BaseException) -> bool:
    """Did the server refuse the transaction (so nothing of it was committed)? A lost
    connection, a timeout or anything else leaves the outcome unknown."""
    if isinstance(exc, OversellRefused | CategoryGone):
        return True
    return (
        isinstance(exc, IntegrityError | DataError | ProgrammingError)
        and isinstance(exc, DBAPIError)
        and not exc.connection_invalidated
    )
