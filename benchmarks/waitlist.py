"""The `waitlist` scenario of issue 12: a sold-out category, a long waiting list, and churn.

A category is sold out by orders. `waiters` buyers join its waiting list over sockets
(`benchmarks.waiters`), each learning its place. Then orders are cancelled at a steady rate,
while one buyer who never joined keeps trying to buy. Every freed seat must become a
`waitlist-offer` to the head of the list, never a sale to the intruder. Most offered buyers buy
with the lock; of every ten, one declines at once (`unlock-tickets`, a release) and one lets
the offer expire: both pass the seat on to the next in line.

Figures: seat freed → `waitlist-offer` received (from the request that freed it, or from the
instant the offer left to expire expired), offers in first-in-first-out order, seats that
reached someone not waiting, and the hot-hold rate with the fair-sale rules on vs off in the
same run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.harness import Bench, event_id_of
from benchmarks.loadgen import Account, Sample
from benchmarks.scenarios import (
    Row,
    ScenarioResult,
    drive,
    jobs_for,
    merge,
    ok,
    pct,
)

SLACK_S = 0.002  # `expiresAt` is written to the millisecond


@dataclass(frozen=True, slots=True)
class Freed:
    """A seat the driver gave back: when the request left and when it was answered."""

    kind: str  # cancel | decline
    sent: float
    answered: float
    status: int


@dataclass(frozen=True, slots=True)
class Offer:
    received: float
    user_id: int
    lock_id: str
    created: float  # the actor's instant: expiresAt - WAITLIST_OFFER_SECONDS
    expires: float


def _epoch(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def waitlist(bench: Bench) -> ScenarioResult:
    o = bench.options
    result = ScenarioResult("waitlist")
    system, realtime = bench.targets.system, bench.targets.realtime
    if system is None or realtime is None or bench.organizer is None:
        result.notes.append("needs the system")
        return result
    seats, waiting = o.waitlist_seats, o.waiters
    if len(bench.accounts) < waiting + seats + 1:
        result.notes.append(f"needs {waiting + seats + 1} buyers, has {len(bench.accounts)}")
        result.passed = False
        return result
    waiters = bench.accounts[:waiting]
    holders = bench.accounts[waiting : waiting + seats]
    intruder = bench.accounts[waiting + seats]
    await bench.settle()
    event = await bench.create_event(
        "Waiting list", [{"categoryName": "Sold out", "price": 25, "totalSeats": seats}]
    )
    event_id = event_id_of(event)
    category_id = int(event["ticketCategories"][0]["id"])
    frees = await _sell_out(bench, event_id, category_id, holders)
    available = await _available(bench, event_id, category_id)
    if available != 0:
        result.notes.append(f"the category did not sell out: {available} seats available")
        result.passed = False
        return result

    runner = bench.runner
    runner.reset()
    params = {
        "event_id": event_id,
        "category_id": category_id,
        "api": system,
        "decline_every": o.decline_every,
    }
    future = runner.submit(jobs_for(bench, "waitlist", realtime, waiters, 64, params=params))
    task = bench.progress.add_task(f"waitlist · {waiting} buyers joining", total=waiting)
    deadline = time.monotonic() + 60 + waiting / 10
    while runner.ready.value < waiting and time.monotonic() < deadline and not future.done():
        bench.progress.update(task, completed=runner.ready.value)
        await asyncio.sleep(0.2)
    bench.progress.remove_task(task)

    # The places of racing joins settle within a feed round or two: let them.
    await asyncio.sleep(1.0)
    # Seats come free one at a time, each request answered before the next: an offer the
    # actor made while freeing seat k carries an instant between k's request and its answer.
    stop_intruder = asyncio.Event()
    intruding = asyncio.ensure_future(
        _intrude(bench, intruder, event_id, category_id, stop_intruder)
    )
    freed: list[Freed] = []
    task = bench.progress.add_task("waitlist · freeing seats", total=len(frees))
    t0 = time.time()
    for i, free in enumerate(frees):
        await asyncio.sleep(max(0.0, t0 + i / o.waitlist_churn - time.time()))
        freed.append(await free())
        bench.progress.update(task, completed=i + 1)
    bench.progress.remove_task(task)
    # Declined offers expire and pass on: wait until offers stop coming for longer than one
    # offer's life, so the chain of declines has played out.
    quiet_for = o.offer_seconds + 2.0
    last_count, last_change = -1, time.monotonic()
    limit = time.monotonic() + 120
    while time.monotonic() < limit:
        if runner.progress.value != last_count:
            last_count, last_change = runner.progress.value, time.monotonic()
        elif time.monotonic() - last_change > quiet_for and last_count >= len(frees):
            break
        await asyncio.sleep(0.25)
    stop_intruder.set()
    intrusions = await intruding
    runner.stop_event.set()
    raw = await asyncio.wait_for(future, timeout=120)
    _, extras = merge(raw)
    _figures(result, o.offer_seconds, waiting, freed, extras, intrusions)
    await _rules_cost(bench, result)
    return result


def _figures(
    result: ScenarioResult,
    offer_seconds: float,
    waiting: int,
    freed: Sequence[Freed],
    extras: dict[str, Any],
    intrusions: dict[str, int],
) -> None:
    offers = _offers(extras.get("offers", []), offer_seconds)
    joined = _ranks(extras, before=min((o.created for o in offers), default=time.time()))
    declines = [Freed("decline", sent, answered, 200 if released else 409)
                for sent, answered, released in extras.get("declined", [])]  # fmt: skip
    cancels_ok = [f for f in freed if f.status == 200]
    freed_ok = cancels_ok + [f for f in declines if f.status == 200]
    # Which offer each freeing caused. A release or cancel made its offer in its own actor
    # step, inside the request's span; what is left came from expiries of offers left to expire,
    # offered in the order they expired.
    by_request: list[float] = []
    by_expiry: list[float] = []
    unmatched: list[Offer] = []
    spans = sorted(freed_ok, key=lambda f: f.sent)
    used: set[int] = set()
    for offer in offers:
        hit = next(
            (
                i
                for i, f in enumerate(spans)
                if i not in used and f.sent - SLACK_S <= offer.created <= f.answered + SLACK_S
            ),
            None,
        )
        if hit is None:
            unmatched.append(offer)
        else:
            used.add(hit)
            by_request.append((offer.received - spans[hit].sent) * 1000)
    let_expire = {str(lock_id) for lock_id in extras.get("let_expire", [])}
    declined = sorted(o.expires for o in offers if o.lock_id in let_expire)
    expiries = iter(declined)
    for offer in unmatched:
        expired_at = next(expiries, None)
        if expired_at is not None and expired_at <= offer.created + SLACK_S:
            by_expiry.append((offer.received - expired_at) * 1000)
    freed_to_offer = by_request + by_expiry
    delivery = [(o.received - o.created) * 1000 for o in offers]
    # First in, first out: each offer goes to a buyer who joined after every buyer offered
    # before (offers made in one actor step share an instant; the list order breaks the tie).
    in_order = 0
    highest = 0
    inversions: list[str] = []
    for offer in sorted(offers, key=lambda o: (o.created, joined.get(o.user_id, 0))):
        place = joined.get(offer.user_id, 0)
        if place > highest:
            in_order += 1
            highest = place
        else:
            inversions.append(f"place {place} offered after place {highest} ({offer.created:.3f})")
    fifo = in_order / len(offers) if offers else None
    strangers = sum(1 for o in offers if o.user_id not in joined)
    reached_not_waiting = strangers + intrusions["won"]
    p99 = pct(freed_to_offer, 99)
    lost = len(freed_ok) + len(declined) - len(offers)
    result.rows += [
        Row("buyers waiting (joined over sockets)", "", {"system": float(len(joined))}, "",
            goal=f"= {waiting}", met=len(joined) == waiting),
        Row("seats freed by cancelling an order", "", {"system": float(len(cancels_ok))}, ""),
        Row("offers declined (unlock-tickets)", "",
            {"system": float(len(freed_ok) - len(cancels_ok))}, ""),
        Row("offers left to expire", "", {"system": float(len(declined))}, ""),
        Row("offers received", "", {"system": float(len(offers))}, "",
            goal="one per seat freed", met=lost <= 0),
        Row("seat freed → waitlist-offer p50", "ms", {"system": pct(freed_to_offer, 50)}, ""),
        Row("seat freed → waitlist-offer p99", "ms", {"system": p99}, "",
            goal="≤ 100 ms", met=None if p99 is None else p99 <= 100),
        Row("…after a cancel or decline, p99", "ms", {"system": pct(by_request, 99)}, ""),
        Row("…after an offer expired, p99", "ms", {"system": pct(by_expiry, 99)}, ""),
        Row("offer made (actor's instant) → received p99", "ms", {"system": pct(delivery, 99)},
            ""),
        Row("offers in FIFO order", "%", {"system": None if fifo is None else 100 * fifo}, "",
            goal="100%", met=fifo == 1.0 if fifo is not None else None),
        Row("seats that reached someone not waiting", "", {"system": float(reached_not_waiting)},
            "", goal="0", met=reached_not_waiting == 0),
        Row("intruder attempts while the list waited", "", {"system": float(intrusions["tried"])},
            ""),
        Row("offers bought with the lock", "", {"system": float(extras.get("bought", 0))}, ""),
        Row("waitlist-position messages heard", "",
            {"system": float(extras.get("position_updates", 0))}, ""),
    ]  # fmt: skip
    failures = extras.get("failures", [])
    if failures:
        result.notes.append(f"{len(failures)} buyers failed to join, e.g. {failures[0]}")
    buy_failures = extras.get("buy_failures", [])
    if buy_failures:
        result.notes.append(f"{len(buy_failures)} offers not bought, e.g. {buy_failures[0]}")
    if inversions:
        result.notes.append(f"{len(inversions)} offers out of order: {'; '.join(inversions[:5])}")
    if intrusions["errors"]:
        result.notes.append(f"intruder: {intrusions['errors']} answers were 5xx or errors")
    if len(cancels_ok) < len(freed):
        result.notes.append(f"{len(freed) - len(cancels_ok)} cancels were refused")
    if len(freed_ok) - len(cancels_ok) < len(declines):
        result.notes.append("some unlock-tickets of an offer were refused")
    result.passed = (
        len(joined) == waiting
        and lost <= 0
        and fifo == 1.0
        and reached_not_waiting == 0
        and not intrusions["errors"]
        and len(cancels_ok) == len(freed)
    )


def _ranks(extras: dict[str, Any], before: float) -> dict[int, int]:
    """Each joined buyer's place in the list as last heard before the first offer was made."""
    ranks = {int(user): int(place) for user, place in extras.get("joined", [])}
    for received, user, place in sorted(extras.get("places", [])):
        if received < before and int(user) in ranks:
            ranks[int(user)] = int(place)
    return ranks


def _offers(raw: Sequence[Sequence[Any]], offer_seconds: float) -> list[Offer]:
    """Each offer once (a buyer with several sockets hears it on each), by the actor's instant."""
    seen: dict[str, Offer] = {}
    for received, user_id, lock_id, expires_at, _ in raw:
        expires = _epoch(str(expires_at))
        if expires is None or lock_id in seen:
            continue
        seen[lock_id] = Offer(
            float(received), int(user_id), str(lock_id), expires - offer_seconds, expires
        )
    return sorted(seen.values(), key=lambda o: o.created)


async def _sell_out(
    bench: Bench, event_id: int, category_id: int, holders: Sequence[Account]
) -> list[Any]:
    """Every seat ordered, one each (holds would expire while the list fills); returns the
    calls that cancel each order, as its organizer."""
    assert bench.targets.system is not None and bench.organizer is not None
    system, organizer = bench.targets.system, bench.organizer[1]
    target = {"eventId": event_id, "categoryId": category_id, "quantity": 1}
    gate = asyncio.Semaphore(16)

    async def take(token: str) -> Any:
        async with gate:
            _, order = await bench.request(
                "POST", f"{system}/api/orders", token, target, expect=201
            )
        return _timed(bench, "cancel", f"{system}/api/orders/{order['id']}/cancel", organizer)

    return list(await asyncio.gather(*(take(token) for _, token in holders)))


def _timed(bench: Bench, kind: str, url: str, token: str, body: Any = None) -> Any:
    async def free() -> Freed:
        sent = time.time()
        status, _ = await bench.request("POST", url, token, body)
        return Freed(kind, sent, time.time(), status)

    return free


async def _available(bench: Bench, event_id: int, category_id: int) -> int | None:
    _, categories = await bench.request(
        "GET", f"{bench.targets.system}/api/events/{event_id}/tickets"
    )
    for category in categories or ():
        if category["id"] == category_id:
            return int(category["availableSeats"])
    return None


async def _intrude(
    bench: Bench, account: Account, event_id: int, category_id: int, stop: asyncio.Event
) -> dict[str, int]:
    """A buyer who never joined tries to hold and to buy, every 20 ms, while the list waits."""
    assert bench.targets.system is not None
    target = {"eventId": event_id, "categoryId": category_id, "quantity": 1}
    paths = ("/api/events/tickets/reserve", "/api/orders")
    counts = {"tried": 0, "won": 0, "errors": 0}
    while not stop.is_set():
        status, _ = await bench.request(
            "POST", f"{bench.targets.system}{paths[counts['tried'] % 2]}", account[1], target
        )
        counts["tried"] += 1
        if 200 <= status < 300:
            counts["won"] += 1
        elif status >= 500:
            counts["errors"] += 1
        await asyncio.sleep(0.02)
    return counts


async def _rules_cost(bench: Bench, result: ScenarioResult) -> None:
    """Hot holds on a category with a sales window and `maxPerUser` against one with neither,
    in the same run, alternating (off, on, on, off) so drift falls on both."""
    o = bench.options
    assert bench.targets.system is not None
    now = datetime.now(UTC)
    big = 1_000_000
    event = await bench.create_event(
        "Rules cost",
        [
            {"categoryName": "Open", "price": 20, "totalSeats": big},
            {
                "categoryName": "Ruled",
                "price": 20,
                "totalSeats": big,
                "maxPerUser": big,
                "salesStartAt": (now - timedelta(hours=1)).isoformat(),
                "salesEndAt": (now + timedelta(days=30)).isoformat(),
            },
        ],
    )
    event_id = event_id_of(event)
    open_id, ruled_id = (int(c["id"]) for c in event["ticketCategories"])
    clients = bench.accounts[: o.hold_clients]
    leg = max(1.0, o.duration / 3)
    samples: dict[str, list[Sample]] = {"off": [], "on": []}
    for rules in ("off", "on", "on", "off"):
        await bench.settle()
        params = {"event_id": event_id, "category_id": ruled_id if rules == "on" else open_id}
        if not samples[rules]:
            warm = jobs_for(bench, "hold", bench.targets.system, clients, o.hold_clients, 1.0,
                            params)  # fmt: skip
            await drive(bench, f"waitlist · hot hold, rules {rules} · warm-up", warm, seconds=1.0)
        jobs = jobs_for(bench, "hold", bench.targets.system, clients, o.hold_clients, leg, params)
        raw = await drive(bench, f"waitlist · hot hold, rules {rules}", jobs, seconds=leg)
        samples[rules].extend(merge(raw)[0])
    per_s = {k: _legs_rate(v, leg) for k, v in samples.items()}
    ratio = per_s["on"] / per_s["off"] if per_s["off"] else None
    result.rows += [
        Row("hot holds/s, no window or limit", "1/s", {"system": per_s["off"]}, ""),
        Row("hot holds/s, window + maxPerUser", "1/s", {"system": per_s["on"]}, ""),
        Row("hot holds/s, rules on ÷ off", "x", {"system": ratio}, "",
            goal=">= 0.9x", met=None if ratio is None else ratio >= 0.9),
    ]  # fmt: skip
    refused = sum(1 for v in samples.values() for s in v if not ok(s))
    if refused:
        result.notes.append(f"hot hold with rules: {refused} answers were not 2xx")


def _legs_rate(samples: Sequence[Sample], leg: float) -> float:
    """2xx holds per second over two legs of `leg` seconds each."""
    return sum(1 for s in samples if ok(s)) / (2 * leg)
