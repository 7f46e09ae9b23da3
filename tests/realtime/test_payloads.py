"""Socket payload parsing: the seed's names in, one readable message out for anything bad."""

from __future__ import annotations

from typing import Any

import pytest

from actors.messages import HoldView
from realtime.payloads import (
    BadPayload,
    EventRoomRequest,
    LockRequest,
    UnlockRequest,
    iso,
    lock_view,
    parse,
)


def test_a_lock_request_ignores_the_user_id_a_client_sends() -> None:
    request = parse(LockRequest, {"eventId": 1, "categoryId": "2", "quantity": 3, "userId": 99})
    assert (request.event_id, request.category_id, request.quantity) == (1, 2, 3)
    assert not hasattr(request, "user_id")


@pytest.mark.parametrize(
    "data",
    [
        None,
        [1, 2],
        "eventId=1",
        {},
        {"eventId": 1, "categoryId": 1},
        {"eventId": 1, "categoryId": 1, "quantity": 0},
        {"eventId": 1, "categoryId": 1, "quantity": -2},
        {"eventId": 1, "categoryId": 1, "quantity": 1.5},
        {"eventId": 1, "categoryId": 1, "quantity": True},
        {"eventId": True, "categoryId": 1, "quantity": 1},
        {"eventId": 0, "categoryId": 1, "quantity": 1},
        {"eventId": 2**31, "categoryId": 1, "quantity": 1},
        {"eventId": "one", "categoryId": 1, "quantity": 1},
    ],
)
def test_bad_lock_requests_are_refused_with_a_message(data: Any) -> None:
    with pytest.raises(BadPayload) as refused:
        parse(LockRequest, data)
    assert refused.value.message.startswith("Invalid payload")


def test_unlock_takes_a_lock_id_or_a_category_and_quantity() -> None:
    assert parse(UnlockRequest, {"lockId": "abc"}).lock_id == "abc"
    by_category = parse(UnlockRequest, {"eventId": 1, "categoryId": 2, "quantity": 1})
    assert (by_category.category_id, by_category.quantity) == (2, 1)
    for data in ({}, {"categoryId": 2}, {"quantity": 1}, {"lockId": ""}, {"lockId": "x" * 200}):
        with pytest.raises(BadPayload):
            parse(UnlockRequest, data)


def test_event_room_request() -> None:
    assert parse(EventRoomRequest, {"eventId": 7, "userId": 1}).event_id == 7
    with pytest.raises(BadPayload):
        parse(EventRoomRequest, {"eventId": None})


def test_times_are_iso_8601_utc_with_milliseconds() -> None:
    assert iso(0) == "1970-01-01T00:00:00.000Z"
    assert iso(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"


def test_lock_view_uses_the_seed_names() -> None:
    hold = HoldView("lock-1", 5, 1, 2, 3, 0.5)
    assert lock_view(hold) == {
        "lockId": "lock-1",
        "eventId": 1,
        "categoryId": 2,
        "quantity": 3,
        "expiresAt": "1970-01-01T00:00:00.500Z",
    }
