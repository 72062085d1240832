"""The fitted feature pipeline compiled to plain lookups and arithmetic: a ``FeaturePlan``.

A plan gives exactly the ColumnTransformer's numbers without scikit-learn (one served record
in tens of microseconds instead of milliseconds) and is stored as JSON plus numpy arrays, so
loading one runs no code (no pickle). Anything it cannot reproduce exactly raises
``NotCompilable`` when compiling, never a different number when serving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml.core.errors import NotCompilable
from loopml.features._columns import SMALL, Columns, date_parts, floats

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

FORMAT = "loopml.feature_plan"
VERSION = 1
MISSING = "(missing)"  # ToText's value for nulls
_LIST_TABLE = 1 << 16  # lookup tables up to this many numbers are also kept as Python lists


def compile_features(transformer: Any) -> FeaturePlan:
    """A ``FeaturePlan`` giving the fitted ColumnTransformer's output; ``NotCompilable`` names
    the first part it cannot reproduce exactly.

    >>> import polars as pl
    >>> from loopml.core.contract import ColumnSpec, Contract
    >>> from loopml.features import build_features
    >>> c = Contract(source="s", columns=(ColumnSpec(name="x", type="float"),))
    >>> frame = pl.DataFrame({"x": [1.0, None, 3.0]})
    >>> ct = build_features(c, columns=["x"], task="regression").fit(frame)
    >>> plan = compile_features(ct)
    >>> bool((plan.transform(frame) == ct.transform(frame)).all())
    True
    """
    from sklearn.compose import ColumnTransformer

    if not isinstance(transformer, ColumnTransformer) or not hasattr(transformer, "transformers_"):
        raise NotCompilable(
            f"Expected a fitted ColumnTransformer, got {type(transformer).__name__}."
        )
    if getattr(transformer, "sparse_output_", False):
        raise NotCompilable("The ColumnTransformer gives sparse output.")
    if transformer.transformer_weights:
        raise NotCompilable("The ColumnTransformer weights its transformers (transformer_weights).")
    blocks: list[_Numbers | _Lookup] = []
    for name, part, columns in transformer.transformers_:
        if isinstance(part, str) and part == "drop":
            continue
        if name == "remainder" and len(columns) == 0:
            continue
        if isinstance(part, str) or not (
            isinstance(columns, (list, tuple)) and all(isinstance(c, str) for c in columns)
        ):
            raise NotCompilable(
                f"Transformer {name!r}: only fitted transformers of named columns compile "
                f"(found {part!r} on {columns!r})."
            )
        block = _compile_part(name, part, list(columns))
        out = transformer.output_indices_[name]
        if block.width != out.stop - out.start:
            raise NotCompilable(
                f"Transformer {name!r}: the plan gives {block.width} columns, "
                f"scikit-learn {out.stop - out.start}."
            )
        blocks.append(block)
    return FeaturePlan(blocks)


class FeaturePlan:
    """A compiled feature pipeline: ``transform`` a Polars frame, ``to_spec``/``from_spec``
    to store it as JSON plus numpy arrays."""

    __slots__ = ("blocks", "width")

    def __init__(self, blocks: Sequence[_Numbers | _Lookup]):
        self.blocks = list(blocks)
        self.width = sum(b.width for b in self.blocks)

    @property
    def columns(self) -> list[str]:
        """The input columns, in the order the blocks read them."""
        return [c for b in self.blocks for c in b.columns]

    def transform(self, frame: pl.DataFrame | Columns) -> np.ndarray:
        """The feature matrix of ``frame`` (float64, C-contiguous, one row per row).

        ``frame`` may be ``Columns`` (a few rows as Python values, shared by the plans of one
        model so that each column is converted once); a frame of at most ``SMALL`` rows is
        read that way too."""
        import numpy as np

        if isinstance(frame, Columns) or frame.height <= SMALL:
            columns = frame if isinstance(frame, Columns) else Columns(frame)
            rows: list[list[float]] = [[] for _ in range(columns.height)]
            for block in self.blocks:
                for row, part in zip(rows, block.rows(columns), strict=True):
                    row += part
            if not rows:
                return np.empty((0, self.width), dtype=np.float64)
            return np.array(rows, dtype=np.float64)
        n = frame.height
        out = np.empty((n, self.width), dtype=np.float64)
        start = 0
        for block in self.blocks:
            block.write(frame, n, out, start)
            start += block.width
        return out

    def to_spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        """A JSON-serialisable description; its numeric arrays go into ``arrays`` under keys
        starting with ``prefix``."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "width": self.width,
            "blocks": [b.to_spec(arrays, f"{prefix}b{i}.") for i, b in enumerate(self.blocks)],
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> FeaturePlan:
        """The plan ``to_spec`` described (``arrays`` as it filled them, e.g. a loaded .npz)."""
        if spec.get("format") != FORMAT or spec.get("version") != VERSION:
            raise ValueError(
                f"Not a feature plan of version {VERSION}: format {spec.get('format')!r}, "
                f"version {spec.get('version')!r}."
            )
        kinds = {"numbers": _Numbers, "lookup": _Lookup}
        plan = cls([kinds[b["kind"]].from_spec(b, arrays) for b in spec["blocks"]])
        if plan.width != spec["width"]:
            raise ValueError(f"The plan's blocks give {plan.width} columns, not {spec['width']}.")
        return plan


# ---- compiling ----


def _compile_part(name: str, part: Any, columns: list[str]) -> _Numbers | _Lookup:
    from sklearn.pipeline import Pipeline

    from loopml.features._transformers import DateParts, ToFloat, ToText

    steps = [s for _, s in part.steps if s is not None and s != "passthrough"] if isinstance(
        part, Pipeline) else [part]
    if not steps:
        raise NotCompilable(f"Transformer {name!r} has no steps.")
    first, rest = steps[0], steps[1:]
    if type(first) is ToText:
        if len(rest) != 1:
            raise NotCompilable(
                f"Transformer {name!r}: text must go to exactly one encoder after ToText "
                f"(found {[type(s).__name__ for s in rest]})."
            )
        return _compile_encoder(name, rest[0], columns)
    if type(first) is ToFloat:
        block = _Numbers(columns, parts=None)
    elif type(first) is DateParts:
        block = _Numbers(columns, parts=list(first._parts()))
    else:
        raise NotCompilable(
            f"Transformer {name!r}: {type(first).__name__} has no compiled form "
            "(a plan starts with ToFloat, ToText or DateParts)."
        )
    for step in rest:
        block.steps.append(_compile_number_step(name, step, block.width_after(block.steps)))
    block.width = block.width_after(block.steps)
    return block


def _compile_number_step(name: str, step: Any, width: int) -> tuple:
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    if type(step) is SimpleImputer:
        missing = step.missing_values
        if not (isinstance(missing, float) and np.isnan(missing)):
            raise NotCompilable(f"Transformer {name!r}: SimpleImputer with missing_values="
                                f"{missing!r} (only NaN compiles).")
        stats = np.asarray(step.statistics_)
        if stats.dtype.kind not in "fiub" or stats.shape != (width,):
            raise NotCompilable(f"Transformer {name!r}: SimpleImputer statistics "
                                f"{stats.dtype} of shape {stats.shape} are not {width} numbers.")
        stats = stats.astype(np.float64)
        keep = np.arange(width) if step.keep_empty_features else np.flatnonzero(~np.isnan(stats))
        indicator = np.empty(0, dtype=np.int64)
        if step.add_indicator:
            if step.indicator_.error_on_new:
                raise NotCompilable(f"Transformer {name!r}: MissingIndicator(error_on_new=True).")
            indicator = np.asarray(step.indicator_.features_, dtype=np.int64)
        return ("impute", stats, keep.astype(np.int64), indicator)
    if type(step) is StandardScaler:
        mean = np.asarray(step.mean_, np.float64) if step.with_mean else None
        scale = np.asarray(step.scale_, np.float64) if step.with_std else None
        for got in (mean, scale):
            if got is not None and got.shape != (width,):
                raise NotCompilable(f"Transformer {name!r}: StandardScaler of shape {got.shape}"
                                    f" after {width} columns.")
        return ("scale", mean, scale)
    raise NotCompilable(
        f"Transformer {name!r}: {type(step).__name__} has no compiled form "
        "(numbers go through SimpleImputer and StandardScaler only)."
    )


def _compile_encoder(name: str, enc: Any, columns: list[str]) -> _Lookup:
    import numpy as np
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

    from loopml.features._transformers import FastTargetEncoder

    kind = type(enc)
    if kind not in (OneHotEncoder, OrdinalEncoder, TargetEncoder, FastTargetEncoder):
        raise NotCompilable(f"Transformer {name!r}: {kind.__name__} has no compiled form "
                            "(text goes to OneHotEncoder, OrdinalEncoder or TargetEncoder).")
    categories = [list(c) for c in enc.categories_]
    for cats in categories:
        if not all(type(c) is str for c in cats):
            raise NotCompilable(f"Transformer {name!r}: {kind.__name__} has categories that "
                                "are not text.")
    infrequent = (enc.infrequent_categories_ if getattr(enc, "_infrequent_enabled", False)
                  else [None] * len(categories))
    tables = []
    for i, cats in enumerate(categories):
        rare = set() if infrequent[i] is None else set(infrequent[i].tolist())
        frequent = [c for c in cats if c not in rare]
        code = {c: k for k, c in enumerate(frequent)}
        codes = [code.get(c, len(frequent)) for c in cats]  # infrequent: one code after the rest
        if kind is OneHotEncoder:
            if enc.drop is not None or enc.handle_unknown == "error":
                raise NotCompilable(f"Transformer {name!r}: OneHotEncoder with drop={enc.drop!r}"
                                    f", handle_unknown={enc.handle_unknown!r}.")
            width = len(frequent) + bool(rare)
            table = np.zeros((len(cats) + 1, width), dtype=np.float64)
            table[np.arange(len(cats)), codes] = 1.0
            if rare and enc.handle_unknown in ("infrequent_if_exist", "warn"):
                table[len(cats), len(frequent)] = 1.0
        elif kind is OrdinalEncoder:
            if enc.handle_unknown != "use_encoded_value":
                raise NotCompilable(f"Transformer {name!r}: OrdinalEncoder with handle_unknown="
                                    f"{enc.handle_unknown!r}.")
            table = np.asarray([*codes, enc.unknown_value], dtype=np.float64)
            table = table.astype(enc.dtype).astype(np.float64).reshape(-1, 1)
        else:
            if enc.target_type_ == "multiclass":
                k = len(enc.classes_)
                found = [enc.encodings_[i * k + j] for j in range(k)]
                default = np.asarray(enc.target_mean_, dtype=np.float64)
            else:
                found = [enc.encodings_[i]]
                default = np.asarray([enc.target_mean_], dtype=np.float64)
            table = np.vstack([np.column_stack(found), default[None, :]]).astype(np.float64)
        tables.append(np.ascontiguousarray(table))
    return _Lookup(columns, categories, tables)


# ---- blocks ----


class _Numbers:
    """Columns to float (ToFloat) or date parts (DateParts), then imputing and scaling."""

    def __init__(self, columns: list[str], parts: list[str] | None, steps: list | None = None):
        self.columns = columns
        self.parts = parts
        self.steps = [] if steps is None else steps
        self.width = self.width_after(self.steps)
        self._small_steps: list | None = None  # the steps as Python lists, built on first use

    def width_after(self, steps: list) -> int:
        width = len(self.columns) * (1 if self.parts is None else len(self.parts))
        for step in steps:
            if step[0] == "impute":
                width = len(step[2]) + len(step[3])
        return width

    def write(self, frame: pl.DataFrame, n: int, out: np.ndarray, start: int) -> None:
        """Put this block's columns of the ``n`` rows of ``frame`` into ``out`` from
        column ``start`` on."""
        import numpy as np

        X = np.empty((n, self.width_after([])), dtype=np.float64)
        if self.parts is None:
            for j, name in enumerate(self.columns):
                X[:, j] = floats(frame.get_column(name))
        else:
            p = len(self.parts)
            for j, name in enumerate(self.columns):
                X[:, j * p:(j + 1) * p] = date_parts(frame.get_column(name), self.parts)
        for step in self.steps:  # X is this block's own array: steps work in place
            if step[0] == "impute":
                _, stats, keep, indicator = step
                mask = np.isnan(X)
                found = mask[:, indicator] if len(indicator) else None  # before imputing
                np.copyto(X, stats, where=mask)
                if len(keep) != X.shape[1]:
                    X = X[:, keep]
                if found is not None:
                    X = np.concatenate((X, found), axis=1, dtype=np.float64)
            else:
                _, mean, scale = step
                if mean is not None:
                    X -= mean  # as StandardScaler: (x - mean) / scale
                if scale is not None:
                    X /= scale
        out[:, start:start + self.width] = X

    def rows(self, columns: Columns) -> list[list[float]]:
        """This block's numbers for a few rows, in Python floats: the same IEEE operations as
        ``write``'s numpy ones in the same order, without the cost of a dozen numpy calls on
        tiny arrays."""

        if self._small_steps is None:
            self._small_steps = [
                (op, *(None if a is None else a.tolist() for a in arrays))
                for op, *arrays in self.steps
            ]
        if self.parts is None:
            values = [columns.floats(c) for c in self.columns]
            rows = [list(r) for r in zip(*values, strict=True)]
        else:
            per_column = [columns.dates(c, self.parts) for c in self.columns]
            rows = per_column[0] if len(per_column) == 1 else [
                [v for part in row for v in part] for row in zip(*per_column, strict=True)]
        for step in self._small_steps:
            if step[0] == "impute":
                _, stats, keep, indicator = step
                rows = [
                    [stats[i] if row[i] != row[i] else row[i] for i in keep]
                    + [1.0 if row[i] != row[i] else 0.0 for i in indicator]
                    for row in rows
                ]
            else:
                _, mean, scale = step
                if mean is not None and scale is not None:
                    rows = [[(v - m) / d for v, m, d in zip(row, mean, scale, strict=True)]
                            for row in rows]
                elif mean is not None:
                    rows = [[v - m for v, m in zip(row, mean, strict=True)] for row in rows]
                elif scale is not None:
                    rows = [[v / d for v, d in zip(row, scale, strict=True)] for row in rows]
        return rows

    def to_spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        steps = []
        for i, step in enumerate(self.steps):
            keys = [None if a is None else f"{prefix}s{i}.{j}" for j, a in enumerate(step[1:])]
            for key, a in zip(keys, step[1:], strict=True):
                if key is not None:
                    arrays[key] = a
            steps.append({"op": step[0], "arrays": keys})
        return {"kind": "numbers", "columns": list(self.columns), "parts": self.parts,
                "steps": steps}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> _Numbers:
        import numpy as np

        steps = []
        for step in spec["steps"]:
            got = [None if k is None else np.asarray(arrays[k]) for k in step["arrays"]]
            if step["op"] == "impute":
                got = [got[0].astype(np.float64), got[1].astype(np.int64),
                       got[2].astype(np.int64)]
            elif step["op"] != "scale":
                raise ValueError(f"Unknown step {step['op']!r} in a feature plan.")
            steps.append((step["op"], *got))
        return cls(list(spec["columns"]), spec["parts"], steps)


class _Lookup:
    """Text columns (ToText) to rows of a table, one table per column: one-hot, ordinal code
    or target encoding; the table's last row is for values never seen in fit."""

    def __init__(self, columns: list[str], categories: list[list[str]], tables: list):
        self.columns = columns
        self.categories = categories
        self.tables = tables
        self.width = sum(t.shape[1] for t in tables)
        self._index = []
        for cats in categories:
            index: dict[Any, int] = {c: i for i, c in enumerate(cats)}
            index[None] = index.get(MISSING, len(cats))  # a null is ToText's "(missing)"
            self._index.append(index)
        self._enums: list[Any] | None = None  # Polars Enum types, built on first large frame
        self._lists: list[list[list[float]] | None] | None = None  # tables as Python rows

    def rows(self, columns: Columns) -> list[list[float]]:
        """This block's numbers for a few rows, as Python floats."""
        if self._lists is None:  # small tables as Python lists, once
            self._lists = [t.tolist() if t.size <= _LIST_TABLE else None for t in self.tables]
        rows: list[list[float]] = [[] for _ in range(columns.height)]
        for j, name in enumerate(self.columns):
            index, unknown, table = self._index[j], len(self.categories[j]), self._lists[j]
            for row, v in zip(rows, columns.texts(name), strict=True):
                at = index.get(v, unknown)
                row += self.tables[j][at].tolist() if table is None else table[at]
        return rows

    def write(self, frame: pl.DataFrame, n: int, out: np.ndarray, start: int) -> None:
        """As ``_Numbers.write``."""
        import polars as pl

        for j, name in enumerate(self.columns):
            series = frame.get_column(name)
            if not isinstance(series.dtype, pl.String):
                series = series.cast(pl.String)  # exactly as ToText does
            table = self.tables[j]
            stop = start + table.shape[1]
            out[:, start:stop] = table[self._rows(j, series, len(self.categories[j]))]
            start = stop

    def _rows(self, j: int, series: pl.Series, unknown: int) -> np.ndarray:
        import numpy as np
        import polars as pl

        if self._enums is None:
            self._enums = [pl.Enum(cats) if cats else None for cats in self.categories]
        if self._enums[j] is None:
            found = pl.Series([None] * series.len(), dtype=pl.UInt32)
        else:
            found = series.cast(self._enums[j], strict=False).to_physical()
        rows = found.fill_null(unknown).to_numpy().astype(np.intp)
        if series.null_count():
            rows[series.is_null().to_numpy()] = self._index[j][None]
        return rows

    def to_spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        keys = []
        for j, table in enumerate(self.tables):
            keys.append(f"{prefix}t{j}")
            arrays[keys[-1]] = table
        return {"kind": "lookup", "columns": list(self.columns),
                "categories": [list(c) for c in self.categories], "tables": keys}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> _Lookup:
        import numpy as np

        tables = [np.ascontiguousarray(arrays[k], dtype=np.float64) for k in spec["tables"]]
        for cats, table in zip(spec["categories"], tables, strict=True):
            if table.ndim != 2 or table.shape[0] != len(cats) + 1:
                raise ValueError("A lookup table does not match its categories.")
        return cls(list(spec["columns"]), [list(c) for c in spec["categories"]], tables)
