"""The indexed room bookkeeping answers exactly as python-socketio's own: the same random runs
of connects, joins, leaves, room closes and disconnects, on both, leave the same rooms with the
same members after every step (sockets compared by their Engine.IO id, as sids are random)."""

from __future__ import annotations

from typing import Any

import socketio
from hypothesis import given, settings
from hypothesis import strategies as st
from socketio.base_manager import BaseManager

from realtime.membership import IndexedRooms

NAMESPACES = ("/", "/realtime")
ROOMS = ("event:1", "event:2", "dashboard:1")
SOCKETS = [f"eio-{i}" for i in range(6)]

operation = st.one_of(
    st.tuples(st.just("connect"), st.sampled_from(SOCKETS), st.sampled_from(NAMESPACES)),
    st.tuples(
        st.just("enter"),
        st.sampled_from(SOCKETS),
        st.sampled_from(NAMESPACES),
        st.sampled_from(ROOMS),
    ),
    st.tuples(
        st.just("leave"),
        st.sampled_from(SOCKETS),
        st.sampled_from(NAMESPACES),
        st.sampled_from(ROOMS),
    ),
    st.tuples(st.just("close"), st.sampled_from(ROOMS), st.sampled_from(NAMESPACES)),
    st.tuples(st.just("disconnect"), st.sampled_from(SOCKETS), st.sampled_from(NAMESPACES)),
)


class Side:
    """One manager under a real (never started) Socket.IO server, which makes its sids."""

    def __init__(self, manager: socketio.AsyncManager) -> None:
        self.server = socketio.AsyncServer(async_mode="asgi", client_manager=manager)
        self.manager = manager
        self.sids: dict[tuple[str, str], str] = {}  # (eio id, namespace) -> sid

    def apply(self, op: tuple[Any, ...]) -> None:
        kind, *args = op
        manager = self.manager
        if kind == "connect":
            eio, namespace = args
            if (eio, namespace) not in self.sids:
                # The sync halves of AsyncManager's coroutines (they only await these).
                sid = BaseManager.pre_connect(manager, eio, namespace)
                BaseManager.connect(manager, sid, namespace)
                self.sids[(eio, namespace)] = sid
        elif kind in ("enter", "leave"):
            eio, namespace, room = args
            sid = self.sids.get((eio, namespace))
            if sid is not None and kind == "enter":
                manager.basic_enter_room(sid, namespace, room)
            elif sid is not None:
                manager.basic_leave_room(sid, namespace, room)
        elif kind == "close":
            room, namespace = args
            manager.basic_close_room(room, namespace)
        else:
            eio, namespace = args
            sid = self.sids.pop((eio, namespace), None)
            if sid is not None:
                manager.pre_disconnect(sid, namespace)
                manager.basic_disconnect(sid, namespace)

    def state(self) -> dict[str, Any]:
        """Every room's members by Engine.IO id; a socket's own room named by its owner."""
        owner = {sid: eio for (eio, _), sid in self.sids.items()}
        rooms = {}
        for namespace, named in self.manager.rooms.items():
            for room, members in named.items():
                name = room if room is None or room not in owner else f"own:{owner[room]}"
                rooms[(namespace, name)] = sorted(members.values())
        each = {
            (eio, namespace): sorted(
                (r if r not in owner else f"own:{owner[r]}")
                for r in self.manager.get_rooms(sid, namespace)
            )
            for (eio, namespace), sid in self.sids.items()
        }
        pending = {
            name: {ns: sorted(owner.get(s, s) for s in sids) for ns, sids in table.items()}
            for name, table in (
                ("connect", self.manager.pending_connect),
                ("disconnect", self.manager.pending_disconnect),
            )
        }
        return {"rooms": rooms, "each": each, "pending": pending}


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=60))
def test_indexed_rooms_match_the_stock_manager_step_by_step(ops: list[tuple[Any, ...]]) -> None:
    stock, indexed = Side(socketio.AsyncManager()), Side(IndexedRooms())
    for op in ops:
        stock.apply(op)
        indexed.apply(op)
        assert indexed.state() == stock.state(), op


def test_a_disconnect_leaves_every_room_of_that_socket_and_nothing_else() -> None:
    side = Side(IndexedRooms())
    for eio in ("eio-a", "eio-b"):
        side.apply(("connect", eio, "/realtime"))
        side.apply(("enter", eio, "/realtime", "event:1"))
    side.apply(("enter", "eio-a", "/realtime", "event:2"))
    side.apply(("disconnect", "eio-a", "/realtime"))
    assert side.state()["rooms"] == {
        ("/realtime", None): ["eio-b"],
        ("/realtime", "own:eio-b"): ["eio-b"],
        ("/realtime", "event:1"): ["eio-b"],
    }
    assert side.manager._rooms_of.keys() == {("/realtime", side.sids[("eio-b", "/realtime")])}
