"""The store's SQL lives in one module (``data/store.py``), by name: every named statement compiles against
the real schema, ``Dataset`` holds no SQL of its own, and the chunked ``IN (...)`` helper returns every row
once across chunk boundaries."""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import box_batch
from workbench.data import store

SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|REPLACE) ")
STATEMENTS = sorted(n for n in store.__all__ if n.isupper() and isinstance(getattr(store, n), str)
                    and SQL.match(getattr(store, n)))


def test_the_statements_are_named():
    assert len(STATEMENTS) >= 50
    assert {"INSERT_CLASS", "INSERT_BLOB", "INSERT_EXAMPLE", "INSERT_ANNOTATION", "INSERT_MEMBER",
            "TOUCH_DATASET"} <= set(STATEMENTS)


@pytest.mark.parametrize("name", STATEMENTS)
def test_every_statement_compiles_against_the_schema(ws, name):
    """``EXPLAIN`` prepares the statement (tables, columns, placeholders checked) without running it."""
    where, args = store.example_filter(1, "train", "new", 1)
    sql = getattr(store, name).format(q="?,?,?", where=where)
    n = sql.count("?")
    ws.conn.execute(f"EXPLAIN {sql}", [None] * n).fetchall()


def test_dataset_holds_no_sql():
    """Every statement ``Dataset`` runs is one of the store module's, called by name."""
    path = Path(store.__file__).with_name("dataset.py")
    literals = [n.value for n in ast.walk(ast.parse(path.read_text()))
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and SQL.match(n.value)]
    assert literals == []


def test_in_chunks_returns_every_row_once_across_chunks():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (ds INTEGER, id INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?,?)", [(d, i) for d in (1, 2) for i in range(2500)])
    wanted = list(range(0, 2500, 2)) + [99_999]  # 1,251 values: two chunks of 900 at most
    sql = "SELECT id FROM t WHERE ds=? AND id IN ({q}) ORDER BY id"
    got = [r[0] for r in store.in_chunks(conn, sql, wanted, before=[2])]
    assert sorted(got) == list(range(0, 2500, 2))
    assert [r[0] for r in store.in_chunks(conn, sql, wanted, before=[2], size=7)] == got
    assert list(store.in_chunks(conn, sql, [], before=[2])) == []


def test_examples_by_id_keep_the_asked_order(ws):
    ds = ws.create_dataset("d", "detection")
    ids = ds.import_batch(box_batch(30))
    asked = ids[::-1][:25]
    got = ds.examples(ids=asked)
    assert [e.id for e in got] == asked
    assert all(len(e.annotations) == 1 for e in got)
