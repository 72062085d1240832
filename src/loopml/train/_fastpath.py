"""The compiled serving form of a trained model: no scikit-learn per-call overhead, no pickle.

``compile_model`` walks the model the search returns - ``SearchedModel`` (weighted members, a
calibrator, a decision threshold), each member a Pipeline of its fitted feature view and an
estimator or a ``FoldBag`` of such Pipelines - and compiles every part: the feature view with
``loopml.features.compile_features``, the estimators and the calibrator with
``compile_estimator`` / ``compile_calibrator``. A part with no compiled form raises
``NotCompilable``. The result computes what the model computes, in the same order (each
level's probabilities normalised and aligned to its classes as ``aligned_proba`` does).

``serving_form`` decides at registration which form serves: the compiled one, written to
``<bundle>/compiled/`` (``model.json`` and ``arrays.npz``: JSON and numpy arrays only, so
loading it runs no code), when its predictions on held-out rows are within ``TOLERANCE`` of
the scikit-learn model's (probabilities too, and the same labels); else the pickle, with the
reason.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.core.errors import NotCompilable
from loopml.train._cv import align

if TYPE_CHECKING:
    import polars as pl

    from loopml.features import Columns

FORMAT = 1
TOLERANCE = 1e-6
SPEC_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"


class CompiledModel:
    """A compiled model: ``predict``, ``predict_proba`` (classification), ``decide`` and
    ``classes_`` as the scikit-learn model it was compiled from, on a Polars frame holding the
    feature columns in the contract's types."""

    def __init__(self, root: _Node, *, task: str, classes: list[Any] | None,
                 threshold: float | None = None, positive: int | None = None):
        self.root = root
        self.task = task
        self.classes = classes
        self.threshold = threshold
        self.positive = positive

    def __repr__(self) -> str:
        return f"CompiledModel({self.task}, {self.root.describe()})"

    @property
    def classes_(self) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("a regressor has no classes")
        return np.asarray(self.classes)

    def predict_proba(self, frame: pl.DataFrame | Columns) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("a regressor has no probabilities")
        return np.asarray(self.root.proba(_shared(frame)), dtype=np.float64)

    def predict(self, frame: pl.DataFrame | Columns) -> np.ndarray:
        if self.task != "classification":
            return self.root.values(_shared(frame))
        return self.decide(self.predict_proba(frame))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Labels from probabilities: the threshold for a binary problem, else the argmax."""
        classes = self.classes_
        if self.threshold is not None and self.positive is not None and len(classes) == 2:
            positive = proba[:, self.positive] >= self.threshold
            return np.where(positive, classes[self.positive], classes[1 - self.positive])
        return classes[proba.argmax(axis=1)]

    # ---- files --------------------------------------------------------------------------

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        spec = {"format": FORMAT, "task": self.task, "classes": _plain(self.classes),
                "threshold": self.threshold, "positive": self.positive,
                "root": self.root.to_spec(arrays, "m")}
        (folder / SPEC_FILE).write_text(json.dumps(spec))
        np.savez_compressed(folder / ARRAYS_FILE, **arrays)  # forests: many nodes
        return folder

    @classmethod
    def load(cls, folder: Path) -> CompiledModel:
        """Read a compiled model; ``allow_pickle=False``: a file that holds objects fails."""
        spec = json.loads((folder / SPEC_FILE).read_text())
        if spec.get("format") != FORMAT:
            raise NotCompilable(f"compiled model format {spec.get('format')!r}, "
                                f"this loopml reads {FORMAT}")
        with np.load(folder / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        return cls(_node_from_spec(spec["root"], arrays), task=spec["task"],
                   classes=spec["classes"], threshold=spec["threshold"],
                   positive=spec["positive"])


def compile_model(model: Any) -> CompiledModel:
    """The compiled form of a fitted model, or ``NotCompilable`` naming the part that has
    none."""
    from loopml.train._final import SearchedModel

    if isinstance(model, SearchedModel):
        if model.task not in ("classification", "regression"):
            raise NotCompilable(f"a {model.task} model")
        calibrator = None
        if model.calibrator is not None:
            from loopml.train._compiled import compile_calibrator

            calibrator = compile_calibrator(model.calibrator)
        members = [(_compile_member(m, model.task), float(w)) for m, w in model.members]
        classes = None if model.classes is None else list(model.classes)
        root = _Ensemble(members, classes=classes, calibrator=calibrator)
        return CompiledModel(root, task=model.task, classes=classes,
                             threshold=model.threshold, positive=model.positive)
    task = "classification" if hasattr(model, "predict_proba") else "regression"
    node = _compile_member(model, task)
    return CompiledModel(node, task=task, classes=node.classes)


def serving_form(model: Any, rows: pl.DataFrame, folder: Path) -> dict[str, Any]:
    """Compile ``model``, check it on ``rows`` (held-out rows, feature columns) and, when it
    agrees, save it under ``folder``; returns the record of which form serves and why."""
    compiled, record = checked_compiled(model, rows)
    if compiled is not None:
        compiled.save(folder)
    return record


def checked_compiled(model: Any, rows: pl.DataFrame) -> tuple[CompiledModel | None,
                                                               dict[str, Any]]:
    """The compiled form of ``model`` when it agrees with it on ``rows`` within
    ``TOLERANCE`` (else None), and the record of which form serves and why."""
    started = time.perf_counter()
    try:
        compiled = compile_model(model)
        diff = parity(model, compiled, rows)
    except NotCompilable as exc:
        return None, {"form": "pickle", "reason": f"no compiled form: {exc}"}
    except Exception as exc:  # noqa: BLE001 - compiling must never fail a registration
        return None, {"form": "pickle", "reason": (
            f"compiling failed: {type(exc).__name__}: {exc}".splitlines()[0])}
    finite = bool(np.isfinite(diff))
    record = {"rows_checked": rows.height, "max_abs_diff": diff if finite else None,
              "tolerance": TOLERANCE,
              "compile_seconds": round(time.perf_counter() - started, 3)}
    if not diff <= TOLERANCE:  # NaN or inf (labels differ) fail too
        by = f"by {diff:.3g}" if finite else "in its labels or shape"
        return None, {"form": "pickle", **record, "reason": (
            f"the compiled form differs from the scikit-learn model {by} on "
            f"{rows.height} held-out rows (tolerance {TOLERANCE:g})")}
    return compiled, {"form": "compiled", **record, "reason": (
        f"matches the scikit-learn model within {TOLERANCE:g} on {rows.height} held-out rows "
        f"(largest difference {diff:.3g})")}


def parity(model: Any, compiled: CompiledModel, rows: pl.DataFrame) -> float:
    """The largest absolute difference between the two forms' probabilities (classification)
    or predictions (regression) on ``rows``; ``inf`` when a label differs."""
    if rows.height == 0:
        raise NotCompilable("no held-out rows to check the compiled form on")
    if compiled.task == "classification":
        expected = np.asarray(model.predict_proba(rows), dtype=np.float64)
        got = compiled.predict_proba(rows)
        if expected.shape != got.shape:
            return float("inf")
        decide = getattr(model, "decide", None)  # labels without scoring the rows again
        labels = decide(expected) if decide is not None else model.predict(rows)
        if list(np.asarray(labels)) != list(compiled.decide(got)):
            return float("inf")
    else:
        expected = np.asarray(model.predict(rows), dtype=np.float64)
        got = np.asarray(compiled.predict(rows), dtype=np.float64)
    both_nan = np.isnan(expected) & np.isnan(got)
    diff = np.where(both_nan, 0.0, np.abs(expected - got))
    return float(diff.max()) if diff.size else 0.0


# ---- nodes ------------------------------------------------------------------------------


class _Node:
    classes: list[Any] | None

    def proba(self, frame: pl.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def values(self, frame: pl.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def to_spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        raise NotImplementedError


class _Pipe(_Node):
    """A fitted feature view, then an estimator."""

    def __init__(self, plan: Any, estimator: Any):
        self.plan = plan
        self.estimator = estimator
        classes = estimator.classes_
        self.classes = None if classes is None else _plain(list(classes))

    def proba(self, frame: pl.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(self.plan.transform(frame))

    def values(self, frame: pl.DataFrame) -> np.ndarray:
        return np.asarray(self.estimator.predict(self.plan.transform(frame)), dtype=np.float64)

    def describe(self) -> str:
        return type(self.estimator).__name__

    def to_spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        return {"kind": "pipeline", "features": self.plan.to_spec(arrays, f"{prefix}f_"),
                "estimator": self.estimator.to_spec(arrays, f"{prefix}e_")}


class _Bag(_Node):
    """Fold models averaged (``FoldBag``)."""

    def __init__(self, models: list[_Node], classes: list[Any] | None):
        self.models = models
        self.classes = classes

    def proba(self, frame: pl.DataFrame) -> np.ndarray:
        return np.mean([align(m.proba(frame), m.classes, self.classes) for m in self.models],
                       axis=0)

    def values(self, frame: pl.DataFrame) -> np.ndarray:
        return np.mean([m.values(frame) for m in self.models], axis=0)

    def describe(self) -> str:
        return f"bag of {len(self.models)} {self.models[0].describe()}"

    def to_spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        return {"kind": "bag", "classes": self.classes,
                "models": [m.to_spec(arrays, f"{prefix}{i}_") for i, m in enumerate(self.models)]}


class _Ensemble(_Node):
    """Weighted members, then the calibrator (``SearchedModel``)."""

    def __init__(self, members: list[tuple[_Node, float]], *, classes: list[Any] | None,
                 calibrator: Any = None):
        self.members = members
        self.classes = classes
        self.calibrator = calibrator

    def proba(self, frame: pl.DataFrame) -> np.ndarray:
        proba = sum(w * align(m.proba(frame), m.classes, self.classes)
                    for m, w in self.members)
        if self.calibrator is not None:
            proba = np.asarray(self.calibrator.transform(proba), dtype=np.float64)
        return proba  # type: ignore[return-value]

    def values(self, frame: pl.DataFrame) -> np.ndarray:
        return sum(w * m.values(frame) for m, w in self.members)  # type: ignore[return-value]

    def describe(self) -> str:
        return " + ".join(m.describe() for m, _ in self.members)

    def to_spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        return {"kind": "ensemble", "classes": self.classes,
                "weights": [w for _, w in self.members],
                "members": [m.to_spec(arrays, f"{prefix}{i}_")
                            for i, (m, _) in enumerate(self.members)],
                "calibrator": None if self.calibrator is None
                else self.calibrator.to_spec(arrays, f"{prefix}c_")}


def _compile_member(model: Any, task: str) -> _Node:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from loopml.features import compile_features
    from loopml.train._compiled import compile_estimator
    from loopml.train._final import FoldBag

    if isinstance(model, FoldBag):
        models = [_compile_member(m, task) for m in model.models]
        classes = None if model.classes is None else _plain(list(model.classes))
        return _Bag(models, classes)
    if not isinstance(model, Pipeline):
        raise NotCompilable(f"{type(model).__name__} is not a feature view and an estimator")
    steps = [s for _, s in model.steps[:-1] if s is not None and s != "passthrough"]
    if len(steps) != 1 or not isinstance(steps[0], ColumnTransformer):
        raise NotCompilable("a Pipeline whose features are not one ColumnTransformer")
    return _Pipe(compile_features(steps[0]), compile_estimator(model.steps[-1][1]))


def _node_from_spec(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> _Node:
    from loopml.features import FeaturePlan
    from loopml.train._compiled import CompiledCalibrator, CompiledEstimator

    kind = spec["kind"]
    if kind == "pipeline":
        return _Pipe(FeaturePlan.from_spec(spec["features"], arrays),
                     CompiledEstimator.from_spec(spec["estimator"], arrays))
    if kind == "bag":
        return _Bag([_node_from_spec(m, arrays) for m in spec["models"]], spec["classes"])
    if kind == "ensemble":
        calibrator = (None if spec["calibrator"] is None
                      else CompiledCalibrator.from_spec(spec["calibrator"], arrays))
        members = [(_node_from_spec(m, arrays), float(w))
                   for m, w in zip(spec["members"], spec["weights"], strict=True)]
        return _Ensemble(members, classes=spec["classes"], calibrator=calibrator)
    raise NotCompilable(f"unknown compiled node {kind!r}")


def _shared(frame: Any) -> Any:
    """A frame of a few rows as ``Columns``, which every member's feature plan reads, so
    that each column is converted once; a larger frame as it is."""
    from loopml.features import Columns

    if isinstance(frame, Columns) or frame.height > Columns.SMALL:
        return frame
    return Columns(frame)


def _plain(values: list[Any] | None) -> list[Any] | None:
    """Class labels as JSON scalars (numpy scalars to Python ones)."""
    if values is None:
        return None
    return [v.item() if isinstance(v, np.generic) else v for v in values]
