"""A batch of rows as one multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING key``, sent as
driver SQL: the group-commit writer's statement (every callback and every radar click).

SQLAlchemy's executemany of a cached ``insert_ignore`` costs ~37 µs a row on SQLite (per row:
parameter construction, the type processors through several layers, and per batch the
insertmanyvalues expansion of the statement's text): a third of a callback's CPU. Here the SQL
text is written once per row count and the rows' values go through each column's own bind
processor (the same conversion SQLAlchemy applies, looked up once), flattened into one tuple.

Row counts are rounded up to a power of two by repeating the batch's last row, so a table has
at most a dozen statement texts (the drivers' prepared-statement caches keep them all, twice on
SQLite: with and without ``RETURNING``): the repeats conflict with the row they copy, ``DO
NOTHING`` skips them, and they neither return nor count a row. The writer's SQLite batches go
without ``RETURNING`` first (``scrm.adapters.db.committed``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

# SQLite (≥ 3.32) allows 32,766 bound values in a statement, PostgreSQL 32,767.
MAX_VALUES = 32_766


def _placeholder(paramstyle: str | None, position: int) -> str:
    if paramstyle == "qmark":
        return "?"
    if paramstyle == "numeric_dollar":
        return f"${position}"
    if paramstyle in ("format", "pyformat"):
        return "%s"
    raise ValueError(f"unsupported paramstyle {paramstyle!r}")


def _pow2_at_least(n: int) -> int:
    return 1 << (n - 1).bit_length()


class MultiRowInsertIgnore:
    """``INSERT INTO table (columns) VALUES (...), ... ON CONFLICT (key) DO NOTHING RETURNING key``
    for one table, one column set and one dialect; ``statements`` gives the texts and values that
    insert a batch (run by ``scrm.adapters.db.committed``)."""

    def __init__(self, table: Table, columns: Sequence[str], key: str, dialect: Dialect, *,
                 stamped: Sequence[str] = ()) -> None:
        # ``columns`` come from each row; ``stamped`` ones hold one value a batch (``statements``).
        self.columns = tuple(columns)
        self.stamped = tuple(stamped)
        self.key = key
        self._dialect = dialect
        written = self.columns + self.stamped
        quote = dialect.identifier_preparer.quote
        self._head = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
                      f"({', '.join(quote(c) for c in written)}) VALUES ")
        self._tail = f" ON CONFLICT ({quote(key)}) DO NOTHING"
        self._returning = f" RETURNING {quote(key)}"
        # One processor per type object, so columns of one type share it (see ``statements``).
        by_type: dict[int, Callable[[Any], Any] | None] = {}
        for c in written:
            column_type = table.c[c].type
            if id(column_type) not in by_type:
                by_type[id(column_type)] = column_type.bind_processor(dialect)
        processors = [by_type[id(table.c[c].type)] for c in written]
        self._processors: list[tuple[int, Callable[[Any], Any]]] = [
            (i, p) for i, p in enumerate(processors[:len(self.columns)]) if p is not None]
        self._stamp_processors = processors[len(self.columns):]
        self._names = frozenset(self.columns)
        self._width = len(written)
        self.max_rows = 1 << ((MAX_VALUES // self._width).bit_length() - 1)
        self._sql: dict[tuple[int, bool], str] = {}

    def fits(self, row: Mapping[str, Any]) -> bool:
        """The row names exactly this statement's columns."""
        return row.keys() == self._names

    def _text(self, rows: int, returning: bool) -> str:
        sql = self._sql.get((rows, returning))
        if sql is None:
            width = self._width
            style = self._dialect.paramstyle
            groups = ("(" + ", ".join(_placeholder(style, r * width + c + 1) for c in range(width)) + ")"
                      for r in range(rows))
            tail = self._tail + self._returning if returning else self._tail
            sql = self._sql[rows, returning] = self._head + ", ".join(groups) + tail
        return sql

    def statements(self, rows: Sequence[Mapping[str, Any]], stamp: Any = None, *,
                   returning: bool = True) -> list[tuple[str, tuple[Any, ...]]]:
        """The SQL texts and driver values that insert ``rows`` (each ``fits``), every ``stamped``
        column set to ``stamp`` (converted once for the batch: a datetime's conversion and the
        sqlite3 adapter's text cost ~25,000 instructions, more than the rest of a row); each
        statement returns the keys it inserted, or without ``returning`` nothing (the driver's
        row count then tells how many rows it inserted: the repeats never count)."""
        statements = []
        columns, processors = self.columns, self._processors
        stamps = [stamp if p is None else p(stamp) for p in self._stamp_processors]
        if self._dialect.name == "sqlite":
            # And the sqlite3 module's own adapter (a datetime's text), once rather than per row.
            stamps = [sqlite3.adapt(v, sqlite3.PrepareProtocol, v) for v in stamps]
        for start in range(0, len(rows), self.max_rows):
            chunk = rows[start:start + self.max_rows]
            size = _pow2_at_least(len(chunk))
            values: list[Any] = []
            # A value converted just before by the same processor is not converted again: a row
            # may hold one datetime in two columns (~8,000 instructions a conversion on SQLite,
            # most of it datetime.replace; the inbox's writer stamps its two instead).
            last: tuple[Any, Any, Any] = (None, None, None)  # (processor, value, converted)
            for row in chunk:
                converted = [row[c] for c in columns]
                for i, process in processors:
                    value = converted[i]
                    if value is last[1] and process is last[0] and value is not None:
                        converted[i] = last[2]
                    else:
                        converted[i] = process(value)
                        last = (process, value, converted[i])
                values.extend(converted)
                values.extend(stamps)
            values.extend(values[-self._width:] * (size - len(chunk)))  # the last row again
            statements.append((self._text(size, returning), tuple(values)))
        return statements
