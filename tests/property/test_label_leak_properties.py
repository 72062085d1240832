"""Properties of the label and leakage checks over generated data."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.core.errors import LoopmlError
from loopml.core.ids import id_like
from loopml.explore import check_labels, find_leaks


@st.composite
def labelled_frames(draw: st.DrawFn) -> pl.DataFrame:
    """Few distinct feature values, so identical rows (and conflicts) are common."""
    n = draw(st.integers(1, 60))
    small = st.lists(st.integers(0, 2), min_size=n, max_size=n)
    return pl.DataFrame({
        "a": draw(small),
        "b": [None if v == 2 else f"c{v}" for v in draw(small)],
        "y": draw(st.lists(st.sampled_from([0.0, 1.0, 2.5]), min_size=n, max_size=n)),
    })  # fmt: skip


@given(labelled_frames(), st.randoms(use_true_random=False))
def test_conflict_counts_do_not_depend_on_row_order(frame: pl.DataFrame, rnd) -> None:
    """Shuffling the rows changes neither the conflicting groups nor the rows in them, and
    the rows in conflict are at most all rows."""
    order = list(range(frame.height))
    rnd.shuffle(order)
    first = check_labels(frame, target="y", task="regression")
    again = check_labels(frame[order], target="y", task="regression")
    assert (first.conflicting_groups, first.conflicting_rows) == (
        again.conflicting_groups, again.conflicting_rows)
    assert 2 * first.conflicting_groups <= first.conflicting_rows <= frame.height
    expected = frame.group_by("a", "b").agg(pl.col("y").n_unique().alias("k"), pl.len())
    expected = expected.filter(pl.col("k") > 1)
    assert first.conflicting_groups == expected.height
    assert first.conflicting_rows == int(expected["len"].sum())


@settings(max_examples=8)
@given(st.integers(0, 2**32 - 1), st.integers(0, 599))
def test_a_flipped_label_on_separable_data_is_found(seed: int, pick: int) -> None:
    """One label flipped, on a row well inside its class, is among the suspected mislabels
    and suggested back to its class."""
    rng = np.random.default_rng(seed)
    y = np.arange(600) % 2
    x = rng.normal(size=(600, 2)) * 0.5 + np.where(y[:, None] == 1, 3.0, -3.0)
    x[pick] = np.where(y[pick] == 1, 3.0, -3.0)  # the flipped row sits at its class's centre
    labels = np.where(y == 1, "b", "a")
    labels[pick] = "a" if y[pick] == 1 else "b"
    frame = pl.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "y": labels})
    q = check_labels(frame, target="y", task="classification")
    found = {i.row: i.suggested for i in q.issues}
    assert found.get(pick) == ("b" if y[pick] == 1 else "a")


@given(st.integers(-(10**12), 10**12), st.integers(100, 400), st.booleans(),
       st.randoms(use_true_random=False))
def test_row_numbers_are_id_like_whatever_their_start(offset: int, n: int, shuffled: bool,
                                                      rnd) -> None:  # fmt: skip
    """Consecutive integers from any start, in any order, are id-like; the same values
    repeated in blocks of ten are not."""
    values = list(range(offset, offset + n))
    if shuffled:
        rnd.shuffle(values)
    assert id_like(pl.Series("n", values)) is not None
    assert id_like(pl.Series("n", [v // 10 for v in values])) is None
    frame = pl.DataFrame({"n": values, "x": [i % 3 for i in range(n)]})
    found = find_leaks(frame, target=None, task="clustering")
    assert [s.column for s in found.suspects] == ["n"]


cells = st.one_of(st.none(), st.integers(-5, 2500).map(str), st.sampled_from(["a", "b", "0"]))


@st.composite
def mixed_frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(0, 40))
    data = {f"c{i}": draw(st.lists(cells, min_size=n, max_size=n)) for i in range(3)}
    data["y"] = draw(st.lists(st.none() | st.sampled_from(["u", "v"]), min_size=n, max_size=n))
    return pl.DataFrame(data, schema={k: pl.String for k in data}).with_columns(
        pl.col("c0").cast(pl.Int64, strict=False)
    )


@given(mixed_frames(), st.sampled_from(["c0", "c1", None]))
def test_only_loopml_errors_escape(frame: pl.DataFrame, time_column: str | None) -> None:
    """Whatever the table, the leakage checks answer or raise a LoopmlError."""
    try:
        found = find_leaks(frame, target="y", task="classification", time_column=time_column)
    except LoopmlError:
        return
    assert not {"y", time_column} & set(found.columns)
