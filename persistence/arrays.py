"""A column matched against a list of values through one array parameter.

`column IN (...)` binds a placeholder per value, and PostgreSQL's protocol allows 65,535: a
category with more live holds than that could not be rebuilt (its activation asks which of
them became orders), and stayed unloadable. `column = ANY(:array)` binds one, whatever the
length, and its SQL text is the same for every length.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def among(column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column = ANY(values)`: true where the column's value is one of `values`."""
    array = bindparam(None, list(values), type_=ARRAY(column.type), unique=True)
    return column == any_(array)
