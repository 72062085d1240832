"""A SQL source read by a watermark takes every row exactly once, whatever the order of
inserts (many tying with the newest value, some exact copies of a row), the chunk size, and
where ingests stop (after any number of committed chunks)."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from loopml.core.config import SqlSource
from loopml.sources import read_chunks

# one step: insert rows (each: how far it moves the watermark, 0 = a tie; whether it copies
# the row before it exactly), then ingest, stopping after ``stop`` chunks (None: all)
steps = st.lists(
    st.tuples(
        st.lists(st.tuples(st.integers(0, 2), st.booleans()), max_size=8),
        st.one_of(st.none(), st.integers(0, 3)),
    ),
    min_size=1, max_size=8,
)


@given(steps=steps, chunk_rows=st.integers(1, 5), numeric=st.booleans())
def test_every_row_is_taken_exactly_once(steps: list, chunk_rows: int, numeric: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'w.db'}"
        engine = sa.create_engine(url)
        kind = "INTEGER" if numeric else "DATETIME"
        with engine.begin() as c:
            c.exec_driver_sql(f"CREATE TABLE t (v INTEGER, wm {kind})")
        config = SqlSource(name="s", kind="sql", url=url, table="t", watermark="wm",
                           chunk_rows=chunk_rows)
        inserted: Counter[int] = Counter()
        taken: Counter[int] = Counter()
        newest, value, cursor = 0, 0, None
        for rows, stop in steps:
            with engine.begin() as c:
                for step, copy in rows:
                    newest += step
                    value = value if copy and inserted else value + 1
                    text = f"2024-01-01 {newest // 60:02d}:{newest % 60:02d}:00"
                    wm = newest if numeric else text
                    c.exec_driver_sql("INSERT INTO t VALUES (?, ?)", (value, wm))
                    inserted[value] += 1
            for i, chunk in enumerate(read_chunks(config, cursor=cursor)):
                if stop is not None and i >= stop:
                    break  # a crash: this chunk is never committed
                taken.update(chunk.frame["v"].to_list())
                cursor = chunk.cursor
        for chunk in read_chunks(config, cursor=cursor):
            taken.update(chunk.frame["v"].to_list())
        engine.dispose()
        assert taken == inserted
