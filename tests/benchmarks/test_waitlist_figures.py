"""The waitlist scenario's judgement of what the waiting buyers heard, on made-up hearings.

Which offer each freed seat caused, whether offers went first in, first out (by each buyer's
rank once racing joins settled), and whether a seat reached somebody not waiting: a bench
that cannot see these failing would report 100% whatever the system did.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from benchmarks.scenarios import Row, ScenarioResult
from benchmarks.waitlist import Freed, _figures

OFFER_SECONDS = 3.0
T0 = 1_800_000_000.0


def stamp(created: float) -> str:
    """`expiresAt` as the server writes it, for an offer made at `created`."""
    moment = datetime.fromtimestamp(created + OFFER_SECONDS, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def hearings(offers: list[tuple[int, float, float]], **more: Any) -> dict[str, Any]:
    """Three buyers joined (users 1, 2, 3 at places 1, 2, 3); `offers` are (user, made,
    heard) in seconds after T0."""
    extras: dict[str, Any] = {
        "joined": [(1, 1), (2, 2), (3, 3)],
        "places": [],
        "offers": [
            (T0 + heard, user, f"lock-{user}", stamp(T0 + made), 1) for user, made, heard in offers
        ],
        "let_expire": [],
        "declined": [],
    }
    extras.update(more)
    return extras


def freed(*spans: tuple[float, float]) -> list[Freed]:
    return [Freed("cancel", T0 + sent, T0 + answered, 200) for sent, answered in spans]


def judge(frees: list[Freed], extras: dict[str, Any], won: int = 0) -> ScenarioResult:
    result = ScenarioResult("waitlist")
    _figures(result, OFFER_SECONDS, 3, frees, extras, {"tried": 10, "won": won, "errors": 0})
    return result


def row(result: ScenarioResult, metric: str) -> Row:
    return next(r for r in result.rows if r.metric == metric)


def test_offers_in_line_order_pass_and_latency_counts_from_the_freeing_request() -> None:
    frees = freed((1.0, 1.010), (2.0, 2.010), (3.0, 3.010))
    extras = hearings([(1, 1.005, 1.030), (2, 2.005, 2.050), (3, 3.005, 3.040)])

    result = judge(frees, extras)

    assert row(result, "offers in FIFO order").values["system"] == 100.0
    assert row(result, "seats that reached someone not waiting").values["system"] == 0.0
    p50 = row(result, "seat freed → waitlist-offer p50").values["system"]
    assert p50 is not None and abs(p50 - 40.0) < 0.5  # 30, 40, 50 ms from each request
    assert result.passed


def test_an_offer_to_a_later_place_first_is_an_inversion() -> None:
    frees = freed((1.0, 1.010), (2.0, 2.010), (3.0, 3.010))
    extras = hearings([(2, 1.005, 1.030), (1, 2.005, 2.050), (3, 3.005, 3.040)])

    result = judge(frees, extras)

    fifo = row(result, "offers in FIFO order").values["system"]
    assert fifo is not None and fifo < 100.0
    assert not result.passed
    assert any("out of order" in note for note in result.notes)


def test_rank_is_the_last_place_heard_before_the_first_seat_came_free() -> None:
    # User 3 was told place 1 at its join, then moved back to 3 once racing joins settled;
    # a move heard after the first offer (an offer shifting the line) does not count.
    frees = freed((1.0, 1.010), (2.0, 2.010), (3.0, 3.010))
    extras = hearings(
        [(1, 1.005, 1.030), (2, 2.005, 2.050), (3, 3.005, 3.040)],
        joined=[(1, 2), (2, 3), (3, 1)],
        places=[(T0 + 0.5, 1, 1), (T0 + 0.5, 2, 2), (T0 + 0.5, 3, 3), (T0 + 1.5, 2, 1)],
    )

    result = judge(frees, extras)

    assert row(result, "offers in FIFO order").values["system"] == 100.0
    assert result.passed


def test_a_seat_won_by_the_intruder_or_an_offer_to_a_stranger_fails() -> None:
    frees = freed((1.0, 1.010), (2.0, 2.010))
    extras = hearings([(1, 1.005, 1.030), (9, 2.005, 2.050)])

    result = judge(frees, extras, won=1)

    assert row(result, "seats that reached someone not waiting").values["system"] == 2.0
    assert not result.passed


def test_an_offer_left_to_expire_is_followed_by_one_offer_timed_from_its_expiry() -> None:
    # User 1 lets its offer expire at 1.005 + 3 s; the seat goes to user 2, offered at
    # 4.020 (no request freed it), heard at 4.060: 55 ms after the expiry.
    frees = freed((1.0, 1.010))
    extras = hearings([(1, 1.005, 1.030), (2, 4.020, 4.060)], let_expire=["lock-1"])

    result = judge(frees, extras)

    after_expiry = row(result, "…after an offer expired, p99").values["system"]
    assert after_expiry is not None and abs(after_expiry - 55.0) < 1.5
    assert row(result, "offers received").met is True
    assert result.passed


def test_an_offer_declined_with_unlock_frees_its_seat_for_the_next() -> None:
    # User 1 declines at 1.100 (answered 1.110); user 2's offer is made inside that span.
    frees = freed((1.0, 1.010))
    extras = hearings(
        [(1, 1.005, 1.030), (2, 1.105, 1.125)], declined=[(T0 + 1.100, T0 + 1.110, True)]
    )

    result = judge(frees, extras)

    assert row(result, "offers declined (unlock-tickets)").values["system"] == 1.0
    after_decline = row(result, "…after a cancel or decline, p99").values["system"]
    assert after_decline is not None and abs(after_decline - 30.0) < 1.0
    assert result.passed


def test_a_freed_seat_without_its_offer_is_a_lost_offer() -> None:
    frees = freed((1.0, 1.010), (2.0, 2.010), (3.0, 3.010))
    extras = hearings([(1, 1.005, 1.030), (2, 2.005, 2.050)])

    result = judge(frees, extras)

    assert row(result, "offers received").met is False
    assert not result.passed
