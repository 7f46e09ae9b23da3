"""Compact pickling: every value object that crosses processes comes back equal, under C
pickle (`pack`) and under Ray's cloudpickle, and a class it cannot serve is refused at once."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import itertools
import pickle
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from types import ModuleType
from typing import Any, Union

import pytest
from ray import cloudpickle

import actors.inventory
import actors.messages
import actors.queue
import persistence.records
from persistence.pickling import compact, pack, unpack

# Ray pickles arguments and results with this; it is untyped.
cloud_dumps: Callable[[Any], bytes] = cloudpickle.dumps
MODULES: tuple[ModuleType, ...] = (
    actors.messages,
    actors.inventory,
    actors.queue,
    persistence.records,
)
COMPACT = sorted(
    {
        cls
        for module in MODULES
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if dataclasses.is_dataclass(cls) and "__reduce__" in vars(cls)
    },
    key=lambda cls: cls.__qualname__,
)


def test_the_messages_are_compact() -> None:
    names = {cls.__name__ for cls in COMPACT}
    # The hot path's commands and outcomes, feed items, and the records inside them.
    expected = {"PlaceHold", "ConfirmHold", "Buy", "HoldPlaced", "OrderPlaced", "Refused"}
    assert expected | {"HoldView", "Availability", "OrderRecord", "SaleRules"} <= names
    assert {"QueueAdmitted", "UserNotice"} <= names


def _example(kind: Any) -> Any:
    """A value of the annotated type, every field filled (the first member of a union)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        return _example(next(arg for arg in args if arg is not type(None)))
    if origin is tuple:
        return (_example(args[0]), _example(args[0]))
    if origin is dict:
        return {"key": [1, "two"]}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return list(kind)[-1]
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _example(hints[f.name]) for f in fields(kind) if f.init})
    return SAMPLES[kind]()


_NUMBERS = itertools.count(1)
# Every field gets a different value, so a field restored into its neighbour shows.
SAMPLES: dict[Any, Callable[[], Any]] = {
    int: lambda: next(_NUMBERS),
    float: lambda: next(_NUMBERS) + 0.5,
    str: lambda: f"text {next(_NUMBERS)}",
    bool: lambda: next(_NUMBERS) % 2 == 0,
    Decimal: lambda: Decimal(next(_NUMBERS)) / 4,
    datetime: lambda: datetime(2026, 11, 29, 5, next(_NUMBERS) % 60, tzinfo=UTC),
    Any: lambda: {"nested": (next(_NUMBERS), 2.5)},
}


@pytest.mark.parametrize("cls", COMPACT, ids=lambda cls: cls.__name__)
def test_every_compact_class_comes_back_equal(cls: type[Any]) -> None:
    value = _example(cls)
    assert unpack(pack(value)) == value
    assert pickle.loads(cloud_dumps(value)) == value
    assert unpack(pack([value, value])) == [value, value]
    # Rebuilt by calling the class with the field values, not through dataclass state.
    assert value.__reduce_ex__(pickle.HIGHEST_PROTOCOL)[0] is cls


def test_a_single_field_class_and_defaults() -> None:
    @compact
    @dataclass(frozen=True, slots=True)
    class Single:
        only: int

    # Defined in a function: C pickle finds classes by name, so use cloudpickle here.
    assert pickle.loads(cloud_dumps(Single(7))) == Single(7)
    assert Single(7).__reduce__() == (Single, (7,))


def test_a_field_outside_init_is_refused() -> None:
    with pytest.raises(TypeError, match="outside __init__"):

        @compact
        @dataclass(frozen=True, slots=True)
        class Derived:
            given: int
            derived: int = field(init=False, default=0)
