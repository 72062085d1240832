"""Train / validation / test splits: stratified, random, or by time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.core.errors import TrainingError
from loopml.core.records import Splits

if TYPE_CHECKING:
    import polars as pl

MIN_ROWS_PER_SPLIT = 5


def split(
    frame: pl.DataFrame,
    *,
    target: str | None,
    task: str,
    time_column: str | None = None,
    valid_size: float = 0.15,
    test_size: float = 0.15,
    seed: int = 0,
) -> Splits:
    """Split rows three ways.

    With a ``time_column`` the newest rows are the test split and the ones before them the
    validation split, cut at timestamps so that no moment is in two splits. Otherwise rows
    are shuffled, stratified by the target for classification.

    >>> import polars as pl
    >>> s = split(pl.DataFrame({"x": range(100), "y": [0, 1] * 50}), target="y",
    ...           task="classification")
    >>> s.sizes, s.strategy
    ({'train': 69, 'valid': 16, 'test': 15}, 'stratified')
    """
    n = frame.height
    need = 3 * MIN_ROWS_PER_SPLIT
    if n < need:
        raise TrainingError(
            f"Only {n} usable rows; splitting into train, validation and test needs at "
            f"least {need}.",
            hint="Add data, or check the quarantine for rows that were rejected.",
        )
    if time_column is not None:
        return _by_time(frame, time_column, valid_size, test_size)

    from sklearn.model_selection import train_test_split

    idx = list(range(n))
    stratify = None
    strategy = "random"
    if task == "classification" and target is not None:
        counts = frame[target].value_counts()
        if counts["count"].min() >= 3:  # type: ignore[operator]
            stratify = frame[target].to_numpy()
            strategy = "stratified"
    rest, test = train_test_split(
        idx, test_size=test_size, random_state=seed, stratify=stratify
    )
    rest_strat = None if stratify is None else stratify[rest]
    train, valid = train_test_split(
        rest,
        test_size=valid_size / (1 - test_size),
        random_state=seed + 1,
        stratify=rest_strat,
    )
    return Splits(
        train=_take(frame, train), valid=_take(frame, valid), test=_take(frame, test),
        strategy=strategy,
    )


def _take(frame: pl.DataFrame, rows: list[int]) -> pl.DataFrame:
    """Rows by position, in source order."""
    import polars as pl

    return frame.with_row_index("__row").filter(pl.col("__row").is_in(rows)).drop("__row")


def _by_time(frame: pl.DataFrame, column: str, valid_size: float, test_size: float) -> Splits:
    import polars as pl

    if column not in frame.columns:
        raise TrainingError(f"The time column {column!r} is not in the data.")
    ordered = frame.sort(column, nulls_last=False)
    times = ordered[column].drop_nulls()
    if times.n_unique() < 3:
        raise TrainingError(
            f"The time column {column!r} has {times.n_unique()} distinct values; a time split "
            "needs at least 3.",
            hint="Remove problem.time_column to split at random instead.",
        )
    n = times.len()
    t_valid = times[int(n * (1 - valid_size - test_size))]
    t_test = times[int(n * (1 - test_size))]
    if t_valid == t_test:
        t_test = times.filter(times > t_valid).min()
    col = pl.col(column)
    train = ordered.filter(col.is_null() | (col < t_valid))
    valid = ordered.filter((col >= t_valid) & (col < t_test))
    test = ordered.filter(col >= t_test)
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        if part.height < MIN_ROWS_PER_SPLIT:
            raise TrainingError(
                f"The time split leaves only {part.height} rows in {name}.",
                hint="Add data or change training.valid_size / training.test_size.",
            )
    return Splits(train=train, valid=valid, test=test, strategy="time", time_column=column)
