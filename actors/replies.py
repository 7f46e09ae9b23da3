"""The answers a category actor gave lately, by request id: a call retried after a lost
reply (a gateway's retry, Ray's restart of a call) is answered as the first one was.
"""

from __future__ import annotations

from collections import OrderedDict

from actors.messages import Outcome

RECENT_REQUESTS = 10_000


class RecentReplies(OrderedDict[str, Outcome]):
    """A bounded mapping: the oldest answer is forgotten first."""

    def __init__(self, capacity: int = RECENT_REQUESTS) -> None:
        super().__init__()
        self._capacity = capacity

    def remember(self, request_id: str, outcome: Outcome) -> None:
        self[request_id] = outcome
        if len(self) > self._capacity:
            self.popitem(last=False)
