"""Boxoffice on two Ray nodes with two gateway processes, as a deployment runs it: a flash sale
split over both gateways, realtime across them, a feed hub restart mid-sale, placement by node
labels, and the loss of the worker node mid-sale. The tests share one cluster and run in file
order (the node loss last: it leaves one node)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.remote import category_actor_name
from persistence import catalog, ledger
from persistence.models import orders, ticket_categories
from persistence.records import CategoryDraft, EventDraft, EventRecord
from sales.identity import Role
from tests.cluster.conftest import TwoNodes
from tests.cluster.ray_cluster import HEAD_LABEL
from tests.gateway.conftest import poll
from tests.realtime.conftest import Recorder, Sockets

if TYPE_CHECKING:
    from tests.fixtures.system import TestUser

# The first test also waits for two Ray nodes and two gateways to start (a minute or two here).
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]


async def new_event(db: AsyncEngine, organizer: TestUser, seats: tuple[int, ...]) -> EventRecord:
    draft = EventDraft(
        event_name=f"Cluster {uuid.uuid4().hex[:6]}",
        event_category="Music",
        description="multi-node test",
        event_date=datetime.now(UTC) + timedelta(days=30),
        location="Hall",
        categories=tuple(
            CategoryDraft(f"Tier {i}", Decimal("40.00"), total, None)
            for i, total in enumerate(seats)
        ),
    )
    async with db.begin() as conn:
        return await catalog.create_event(conn, draft, organizer.id)


async def audit(db: AsyncEngine, category_id: int) -> tuple[int, int, set[int]]:
    """(seats sold by the order rows, the category's sold counter, ids of live orders)."""
    async with db.connect() as conn:
        sold = await ledger.sold_seats(conn, category_id)
        counter: int = (
            await conn.execute(
                select(ticket_categories.c.sold_seats).where(ticket_categories.c.id == category_id)
            )
        ).scalar_one()
        ids: Sequence[int] = (
            (
                await conn.execute(
                    select(orders.c.id).where(
                        orders.c.category_id == category_id, orders.c.status != "cancelled"
                    )
                )
            )
            .scalars()
            .all()
        )
        return sold, counter, set(ids)


@dataclass
class Sale:
    """Buyers of one seat each, spread over both gateways, retrying a 503 or a lost answer with
    the same Idempotency-Key until they get an order or every category refuses (sold out)."""

    apis: list[str]
    event_id: int
    category_ids: list[int]
    statuses: Counter[int] = field(default_factory=Counter)
    orders: dict[int, int] = field(default_factory=dict)  # order id -> category
    slowest: float = 0.0
    sold_at: list[tuple[float, int]] = field(default_factory=list)  # (when, category)
    unanswered: int = 0
    # Once this many orders are in, buyers send nothing new until `resume` is set (a fault is
    # injected meanwhile, so the rest of the sale surely runs after it).
    pause_at: int | None = None
    resume: asyncio.Event = field(default_factory=asyncio.Event)
    # Requests in flight at most (None: every buyer at once). What is in flight when the sale
    # pauses still lands: with 100 buyers at once on a loaded machine, a CI run sold every
    # seat before the fault, and nothing after it was tested.
    at_once: int | None = None
    _slots: contextlib.AbstractAsyncContextManager[Any] = field(init=False)

    def __post_init__(self) -> None:
        at_once = self.at_once
        self._slots = contextlib.nullcontext() if at_once is None else asyncio.Semaphore(at_once)

    async def buy(self, http: httpx.AsyncClient, index: int, buyer: TestUser) -> None:
        api = self.apis[index % len(self.apis)]
        start = index % len(self.category_ids)
        for category_id in self.category_ids[start:] + self.category_ids[:start]:
            key = uuid.uuid4().hex
            while True:
                sent = time.monotonic()
                try:
                    async with self._slots:
                        if self.pause_at is not None and len(self.orders) >= self.pause_at:
                            await self.resume.wait()
                        sent = time.monotonic()
                        answer = await http.post(
                            f"{api}/api/orders",
                            json={
                                "eventId": self.event_id,
                                "categoryId": category_id,
                                "quantity": 1,
                            },
                            headers={**buyer.headers, "Idempotency-Key": key},
                        )
                except httpx.TransportError:
                    self.unanswered += 1
                    continue
                finally:
                    self.slowest = max(self.slowest, time.monotonic() - sent)
                self.statuses[answer.status_code] += 1
                if answer.status_code == 503:
                    assert "Retry-After" in answer.headers
                    await asyncio.sleep(0.2)
                    continue
                break
            if answer.status_code == 201:
                self.orders[answer.json()["id"]] = category_id
                self.sold_at.append((time.monotonic(), category_id))
                return
            assert answer.status_code == 409, answer.text


async def buyers(nodes: TwoNodes, db: AsyncEngine, count: int) -> list[TestUser]:
    return list(await asyncio.gather(*(nodes.user(db) for _ in range(count))))


async def test_a_flash_sale_split_over_two_gateways_sells_each_seat_once(
    two_nodes: TwoNodes, db: AsyncEngine, http: httpx.AsyncClient
) -> None:
    event = await new_event(db, await two_nodes.user(db, Role.ORGANIZER), (40,))
    category = event.categories[0].id
    sale = Sale([g.api for g in two_nodes.gateways], event.id, [category])
    people = await buyers(two_nodes, db, 70)
    await asyncio.gather(*(sale.buy(http, i, buyer) for i, buyer in enumerate(people)))

    sold, counter, ids = await audit(db, category)
    assert sold == counter == sale.statuses[201] == len(ids) == 40
    assert set(sale.orders) == ids
    assert sale.statuses[409] == 30 and not [s for s in sale.statuses if s >= 500]
    for gateway in two_nodes.gateways:
        tickets = (await http.get(f"{gateway.api}/api/events/{event.id}/tickets")).json()
        assert tickets[0]["availableSeats"] == 0


async def test_locks_and_orders_reach_sockets_on_the_other_gateway(
    two_nodes: TwoNodes, db: AsyncEngine, http: httpx.AsyncClient
) -> None:
    a, b = (g.api for g in two_nodes.gateways)
    event = await new_event(db, await two_nodes.user(db, Role.ORGANIZER), (6,))
    category = event.categories[0].id
    buyer, watcher = await two_nodes.user(db), await two_nodes.user(db)
    sockets = Sockets()
    try:
        watcher_on_b = await sockets(b, watcher.token)
        await watcher_on_b.emit("join-event-room", {"eventId": event.id})
        await watcher_on_b.next("joined-event-room")
        buyer_on_b = await sockets(b, buyer.token)
        buyer_on_a = await sockets(a, buyer.token)

        lock = {"eventId": event.id, "categoryId": category, "quantity": 2}
        await buyer_on_a.emit("lock-tickets", lock)
        reply = await buyer_on_a.next("lock-tickets-response")
        assert reply["success"] is True, reply
        await watcher_on_b.next("availability-update", lambda u: u["lockedTickets"] == 2)

        answer = await http.post(
            f"{a}/api/orders/with-lock",
            headers=buyer.headers,
            json=lock | {"lockId": reply["lockId"]},
        )
        assert answer.status_code == 201, answer.text
        completed = await buyer_on_b.next("order-completed")
        assert completed["orderId"] == answer.json()["id"]
        await watcher_on_b.next(
            "availability-update", lambda u: u["lockedTickets"] == 0 and u["availableTickets"] == 4
        )
    finally:
        await sockets.close()


async def my_locks(socket: Recorder) -> set[str]:
    await socket.emit("get-my-locks")
    reply = await socket.next("my-locks-response")
    return {lock["lockId"] for lock in reply["locks"]}


async def test_after_a_hub_restart_every_gateway_shows_the_true_state(
    two_nodes: TwoNodes, db: AsyncEngine, http: httpx.AsyncClient
) -> None:
    a, b = (g.api for g in two_nodes.gateways)
    event = await new_event(db, await two_nodes.user(db, Role.ORGANIZER), (10, 10))
    first, second = (c.id for c in event.categories)
    buyer, other = await two_nodes.user(db), await two_nodes.user(db)

    async def reserve(api: str, who: TestUser, category: int) -> str:
        body = {"eventId": event.id, "categoryId": category, "quantity": 1}
        answer = await http.post(
            f"{api}/api/events/tickets/reserve", json=body, headers=who.headers
        )
        assert answer.status_code == 201, answer.text
        lock_id: str = answer.json()["lockId"]
        return lock_id

    gone = await reserve(a, buyer, first)
    kept = {await reserve(a, buyer, first), await reserve(b, buyer, second)}
    sockets = Sockets()
    try:
        views = [await sockets(api, buyer.token) for api in (a, b)]
        for view in views:

            async def sees_all(view: Recorder = view) -> bool:
                return await my_locks(view) == kept | {gone}

            await poll(sees_all)

        two_nodes.command("kill-hub")
        # Changes while the hub is away (or restarting): kept by their actors' batchers.
        released = await http.post(
            f"{b}/api/events/tickets/release",
            json={"categoryId": first, "lockId": gone},
            headers=buyer.headers,
        )
        assert released.status_code == 200, released.text
        await reserve(b, other, second)

        true_available = {first: 9, second: 8}
        samples: list[set[str]] = []
        seen: dict[str, object] = {}  # the last view of each gateway, for a failure's message

        async def converged() -> bool:
            for view, api in zip(views, (a, b), strict=True):
                locks = await my_locks(view)
                samples.append(locks)
                tickets = (await http.get(f"{api}/api/events/{event.id}/tickets")).json()
                available = {t["id"]: t["availableSeats"] for t in tickets}
                seen[api] = (locks, available)
                if locks != kept or available != true_available:
                    return False
            return True

        killed = time.monotonic()

        async def hub_back() -> bool:
            samples.extend([await my_locks(view) for view in views])  # meanwhile, too
            states = [await http.get(f"{api}/api/health") for api in (a, b)]
            return all(state.json()["realtime"] for state in states)

        # Generous bounds: restarting the hub's process took 1 to 5 s on this loaded machine.
        await poll(hub_back, within=60)
        recovered = time.monotonic()
        try:
            await poll(converged, within=60)
        except TimeoutError:
            raise AssertionError(f"expected {kept} and {true_available}, saw {seen}") from None
        took = time.monotonic() - recovered
        # Never "empty": the buyer held at least two locks all along, and every gateway said so.
        assert all(len(sample) >= 2 for sample in samples), samples
        for gateway in two_nodes.gateways:
            health = gateway.health().json()
            assert health["ray"] is True and health["realtime"] is True
        print(
            f"hub restart: hub answering {recovered - killed:.2f} s after the kill, every "
            f"gateway showing the true state {took:.2f} s after that"
        )
    finally:
        await sockets.close()


async def test_node_label_placement_puts_every_category_on_the_labelled_nodes(
    two_nodes: TwoNodes, db: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """ACTOR_PLACEMENT=node-label: every category a gateway activates lives on a node with
    the labels (the head carries them here), where spread placement uses both nodes."""
    key, value = HEAD_LABEL
    labelled = await asyncio.to_thread(
        two_nodes.start_gateway,
        "labelled",
        ACTOR_PLACEMENT="node-label",
        ACTOR_NODE_LABELS=f"{key}={value}",
    )
    organizer, buyer = await two_nodes.user(db, Role.ORGANIZER), await two_nodes.user(db)

    async def activate_through(api: str) -> dict[str, str | None]:
        """Six categories activated by a hold each through `api`: the node of each actor."""
        event = await new_event(db, organizer, (5,) * 6)
        for category in event.categories:
            body = {"eventId": event.id, "categoryId": category.id, "quantity": 1}
            held = await http.post(
                f"{api}/api/events/tickets/reserve", json=body, headers=buyer.headers
            )
            assert held.status_code == 201, held.text
        names = ",".join(category_actor_name(c.id) for c in event.categories)
        nodes: dict[str, str | None] = two_nodes.command(f"where {names}")["nodes"]
        return nodes

    try:
        assert set((await activate_through(labelled.api)).values()) == {"head"}
        spread = await activate_through(two_nodes.gateways[0].api)
        assert set(spread.values()) == {"head", "worker"}, spread
    finally:
        labelled.process.terminate()
        await asyncio.to_thread(labelled.process.wait, 30)


async def test_losing_the_worker_node_mid_sale_oversells_nothing_and_loses_no_order(
    two_nodes: TwoNodes, db: AsyncEngine, http: httpx.AsyncClient
) -> None:
    seats = (20, 20, 20, 20)
    event = await new_event(db, await two_nodes.user(db, Role.ORGANIZER), seats)
    categories = [c.id for c in event.categories]
    warmer = await two_nodes.user(db)
    # Every gateway talks to every category once (activation), so each knows its actor.
    for gateway in two_nodes.gateways:
        for category in categories:
            body = {"eventId": event.id, "categoryId": category, "quantity": 1}
            held = await http.post(
                f"{gateway.api}/api/events/tickets/reserve", json=body, headers=warmer.headers
            )
            assert held.status_code == 201, held.text
            released = await http.post(
                f"{gateway.api}/api/events/tickets/release",
                json={"categoryId": category, "lockId": held.json()["lockId"]},
                headers=warmer.headers,
            )
            assert released.status_code == 200, released.text
    placed = two_nodes.command("actors")
    # Spread, not packed: each node carries some of the live categories.
    assert placed["head"] >= 1 and placed["worker"] >= 1, placed

    sale = Sale([g.api for g in two_nodes.gateways], event.id, categories, pause_at=25, at_once=16)
    people = await buyers(two_nodes, db, 100)
    health: Counter[int] = Counter()
    lost_at: list[float] = []

    async def lose_the_worker_mid_sale() -> None:
        async def quarter_sold() -> bool:
            return len(sale.orders) >= 25

        await poll(quarter_sold, within=120, interval=0.02)
        # The buyers wait from the 25th order on (requests in flight still land), the node is
        # lost, and they go on. Without the pause, a CI run saw no order at all after the
        # loss was injected, so nothing after it was tested.
        await asyncio.to_thread(two_nodes.command, "remove-worker")
        lost_at.append(time.monotonic())  # its processes are gone now
        sale.resume.set()
        while len(sale.orders) < sum(seats):
            for gateway in two_nodes.gateways:
                answer = await http.get(f"{gateway.api}/api/health")
                health[answer.status_code] += 1
            await asyncio.sleep(0.2)

    async with asyncio.timeout(150):
        await asyncio.gather(
            lose_the_worker_mid_sale(),
            *(sale.buy(http, i, buyer) for i, buyer in enumerate(people)),
        )

    for category, total in zip(categories, seats, strict=True):
        sold, counter, ids = await audit(db, category)
        assert sold == counter == total, (category, sold, counter)
        answered = {order for order, c in sale.orders.items() if c == category}
        assert answered == ids  # no lost order, and none the buyers were not told of
    assert len(sale.orders) == sum(seats)
    assert not [s for s in sale.statuses if s >= 500 and s != 503], sale.statuses
    # Requests to the lost node's categories answered 503 (with Retry-After, checked in
    # `Sale.buy`) while Ray restarted them, and every request was answered; every gateway
    # stayed healthy for the categories that sold meanwhile. (How long answers took is
    # printed, not asserted: speed is never a test's assertion here. That a command fails at
    # its own deadline is tests/actors/test_coalescing.py.)
    assert sale.unanswered == 0 and sale.statuses[503] > 0, sale.statuses
    after = [[t for t, c in sale.sold_at if c == cat and t > lost_at[0]] for cat in categories]
    assert any(after), "every seat sold before the node was lost: nothing tested after it"
    recovery = max(min(times) for times in after if times) - lost_at[0]
    assert set(health) == {200}, health
    print(
        f"node loss: {dict(sale.statuses)}, slowest answer {sale.slowest:.2f} s, "
        f"every category selling again {recovery:.2f} s after the loss"
    )
