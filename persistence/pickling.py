"""How the value objects that cross processes (actor commands and outcomes, feed items, order
records) pickle: as their class and a tuple of their field values.

A slotted dataclass pickles its state through `dataclasses.fields()` on every dump and load.
Per hold outcome, in batches of 100: 10.0 µs to dump and 6.4 µs to load under Ray's
cloudpickle with that state; 1.9 µs and 2.9 µs as a tuple under C pickle (`pack`).
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")


def compact(cls: type[T]) -> type[T]:
    """Pickle instances of the dataclass `cls` as `cls(*field values)`. Every field must be
    an `__init__` parameter, in order (no `init=False`)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if not all(field.init for field in fields):
        raise TypeError(f"{cls.__name__}: a field outside __init__ cannot be pickled this way")
    names = [field.name for field in fields]
    values: Callable[[Any], Any]
    if len(names) == 1:
        single = attrgetter(names[0])
        values = lambda instance: (single(instance),)  # noqa: E731
    else:
        values = attrgetter(*names)

    def __reduce__(self: Any) -> tuple[type[T], tuple[Any, ...]]:
        return cls, values(self)

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    return cls


def pack(value: Any) -> bytes:
    """One call's payload, for `unpack` in the other process: C pickle, which is several times
    faster than the cloudpickle Ray uses for arguments and results (it pickles importable
    classes only, which every message is)."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(payload: bytes) -> Any:
    """What `pack` packed. Only for payloads from our own processes, as Ray's own are."""
    return pickle.loads(payload)
