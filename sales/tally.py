"""What the sales service counts as it decides: holds and orders by outcome, refusals by
operation and reason (plain numbers, see `actors.tally`; read by the metrics endpoint)."""

from __future__ import annotations

from actors.refusals import RefusalReason
from actors.tally import Counts

PLACED = "placed"
REPLAYED = "replayed"


class SalesTally:
    __slots__ = ("holds", "orders", "refusals")

    def __init__(self) -> None:
        self.holds = Counts()  # outcome: placed, or the refusal's reason
        self.orders = Counts()  # outcome: placed, replayed, or the refusal's reason
        self.refusals = Counts()  # (operation, reason)

    def refused(self, operation: str, reason: RefusalReason) -> None:
        self.refusals.add((operation, reason.value))
        if operation == "hold":
            self.holds.add(reason.value)
        elif operation == "order":
            self.orders.add(reason.value)
