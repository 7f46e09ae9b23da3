"""`/api/orders`: buy, buy with a hold, list what the caller may see, and cancel.

Prices and names come from the catalogue; an Idempotency-Key replay returns the first order.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from starlette.responses import Response

from gateway.deps import (
    AdmissionPass,
    Caller,
    EventId,
    OrderId,
    OrderPaging,
    RequestKey,
    RuntimeDep,
)
from gateway.schemas import OrderIn, OrderOut, OrderWithLockIn
from gateway.system import Runtime
from persistence.records import OrderRecord
from sales.identity import Principal

router = APIRouter(prefix="/orders", tags=["orders"])

_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid body, or a quantity or category that does not match the hold"},
    401: {"description": "Missing or invalid token"},
    403: {"description": "The lock belongs to another user, or no admission pass (queue on)"},
    404: {"description": "Unknown event, category or lock"},
    409: {"description": "Not enough seats, category not on sale, or the lock has expired"},
}


def shape(order: OrderRecord) -> OrderOut:
    return OrderOut(
        id=order.id,
        user_id=order.user_id,
        event_id=order.event_id,
        category_id=order.category_id,
        quantity=order.quantity,
        unit_price=order.unit_price,
        total_price=order.total_price,
        status=order.status.value,
        event_name=order.event_name,
        category_name=order.category_name,
        notes=order.notes,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderOut, responses=_REFUSALS)
async def create_order(
    body: OrderIn,
    caller: Caller,
    request_key: RequestKey,
    runtime: RuntimeDep,
    admission_pass: AdmissionPass = None,
) -> Response:
    return await buy(runtime, caller, body, admission_pass, request_key)


@router.post(
    "/with-lock",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    responses=_REFUSALS,
)
async def create_order_with_lock(
    body: OrderWithLockIn,
    caller: Caller,
    request_key: RequestKey,
    runtime: RuntimeDep,
    admission_pass: AdmissionPass = None,
) -> Response:
    return await buy_with_lock(runtime, caller, body, admission_pass, request_key)


async def buy(
    runtime: Runtime,
    caller: Principal,
    body: OrderIn,
    admission_pass: str | None = None,
    request_key: str | None = None,
) -> Response:
    """The order route's answer, also served by `gateway.hotpaths` without FastAPI (which
    sends a request carrying an admission pass or an Idempotency-Key on to the route)."""
    return await _place(runtime, caller, body, None, admission_pass, request_key)


async def buy_with_lock(
    runtime: Runtime,
    caller: Principal,
    body: OrderWithLockIn,
    admission_pass: str | None = None,
    request_key: str | None = None,
) -> Response:
    """The order-with-lock route's answer; served by `gateway.hotpaths` as `buy` is."""
    return await _place(runtime, caller, body, body.lock_id, admission_pass, request_key)


async def _place(
    runtime: Runtime,
    caller: Principal,
    body: OrderIn,
    lock_id: str | None,
    admission_pass: str | None,
    request_key: str | None,
) -> Response:
    order = await runtime.sales.place_order(
        caller,
        event_id=body.event_id,
        category_id=body.category_id,
        quantity=body.quantity,
        notes=body.notes,
        request_key=request_key,
        lock_id=lock_id,
        admission_pass=admission_pass,
    )
    return shape(order).respond(status.HTTP_201_CREATED)


@router.get("", response_model=list[OrderOut])
async def list_my_orders(caller: Caller, runtime: RuntimeDep, page: OrderPaging) -> list[OrderOut]:
    orders = await runtime.sales.my_orders(caller, limit=page.limit, offset=page.offset)
    return [shape(order) for order in orders]


@router.get("/all", response_model=list[OrderOut])
async def list_all_orders(caller: Caller, runtime: RuntimeDep, page: OrderPaging) -> list[OrderOut]:
    orders = await runtime.sales.all_visible_orders(caller, limit=page.limit, offset=page.offset)
    return [shape(order) for order in orders]


@router.get("/event/{event_id}", response_model=list[OrderOut])
async def list_event_orders(
    event_id: EventId, caller: Caller, runtime: RuntimeDep, page: OrderPaging
) -> list[OrderOut]:
    orders = await runtime.sales.event_orders(
        caller, event_id, limit=page.limit, offset=page.offset
    )
    return [shape(order) for order in orders]


@router.get("/{id}", response_model=OrderOut)
async def get_order(id: OrderId, caller: Caller, runtime: RuntimeDep) -> OrderOut:
    return shape(await runtime.sales.visible_order(caller, id))


@router.post("/{id}/cancel", response_model=OrderOut)
async def cancel(id: OrderId, caller: Caller, runtime: RuntimeDep) -> OrderOut:
    return shape(await runtime.sales.cancel_order(caller, id))
