"""Every row that entered is in exactly one place (clean or quarantine), across several
ingests, quarantine replays and crashes at any step of either."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.core.contract import ColumnSpec
from loopml.pipeline import Project, _commit
from loopml.pipeline._ingest import recover_pending
from tests.ingest_project import (
    COLUMNS,
    assert_each_row_once,
    make_project,
    set_contract,
    write_csv,
)

POINTS = ("after_begin", "after_raw", "after_clean", "after_quarantine", "before_finish",
          "after_finish")
STRICT = COLUMNS
LOOSE = (COLUMNS[0], ColumnSpec(name="amount", type="float", min=-100, max=100_000), COLUMNS[2])


class Crash(Exception):
    pass


amounts = st.one_of(st.integers(-5, 3000).map(str), st.sampled_from(["", "n/a", "1e3", "-0"]))
rows = st.lists(st.tuples(st.integers(1, 6), amounts, st.sampled_from(["x", "y"])),
                min_size=0, max_size=6)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("file"), rows),
        st.tuples(st.just("crash"), st.sampled_from(POINTS)),
        st.tuples(st.just("replay"), st.booleans()),
    ),
    min_size=1, max_size=7,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_every_row_is_in_exactly_one_place(plan: list[tuple[str, object]]) -> None:
    """Ingests, replays (with a looser or the strict contract) and crashes, in any order."""
    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(Path(tmp))
        expected: set[tuple[str, int]] = set()
        crash_at: str | None = None

        def hook(point: str) -> None:
            if point == crash_at:
                raise Crash(point)

        _commit.crash_hook = hook
        try:
            for n, (kind, arg) in enumerate(plan):
                if kind == "crash":
                    crash_at = arg  # type: ignore[assignment]
                    continue
                if kind == "file":
                    if not arg:
                        continue
                    # a column outside the contract keeps each file's bytes unique (the file
                    # reader skips a file whose content it read before) while the rows stay
                    # duplicates of earlier ones for the contract
                    write_csv(root, f"f{n}.csv", [(*r, n) for r in arg],  # type: ignore[union-attr]
                              header="id,amount,label,note")
                    # _source_row is the CSV line number: the header is line 1
                    expected |= {(f"data/f{n}.csv", i) for i in range(2, len(arg) + 2)}
                else:
                    set_contract(root, LOOSE if arg else STRICT)
                try:
                    with Project(root) as p:
                        if kind == "file":
                            p.ingest()
                        else:
                            p.replay("orders")
                except Crash:
                    pass
                crash_at = None
        finally:
            _commit.crash_hook = None
        with Project(root) as p:
            recover_pending(p.context)  # finishes or undoes what the last crash left
            if expected:
                p.ingest()  # and reads again what an undone ingest had not written
            assert p.catalog.pending_ingests() == []
        if expected:
            assert_each_row_once(root, expected)
