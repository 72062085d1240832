"""Evidence for a decision: champion and challenger scored on the same rows."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopml.core.errors import LoopError
from loopml.core.labels import match_label
from loopml.core.records import Evidence

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from loopml.core.config import LoopConfig
    from loopml.core.records import ModelBundle


def outputs(bundle: ModelBundle, frame: pl.DataFrame, classes: tuple[Any, ...] | None
            ) -> np.ndarray:
    """A model's outputs for ``frame``: class probabilities in the order of ``classes`` (a
    class the model does not know gets 0), or predicted values."""
    import numpy as np

    missing = [c for c in bundle.feature_columns if c not in frame.columns]
    if missing:
        raise LoopError(
            f"The model needs columns these rows do not have: {', '.join(missing[:10])}.",
            hint="Models trained on different columns cannot be compared on the same rows; "
            "promote by hand with 'loopml promote' if the new one should win.",
        )
    X = frame.select(list(bundle.feature_columns))
    if bundle.task != "classification":
        return np.asarray(bundle.model.predict(X), dtype=float)
    proba = np.asarray(bundle.model.predict_proba(X), dtype=float)
    own = list(bundle.classes if bundle.classes is not None else bundle.model.classes_)
    assert classes is not None
    out = np.zeros((X.height, len(classes)))
    for j, c in enumerate(own):
        found = match_label(c, classes)
        if found is not None:
            out[:, list(classes).index(found)] = proba[:, j]
    return out


def same_rows(
    champion: ModelBundle,
    challenger: ModelBundle,
    frame: pl.DataFrame,
    truth: Any,
    *,
    name: str,
    policy: LoopConfig,
    metric: str,
    start: datetime | None = None,
    end: datetime | None = None,
    seed: int = 0,
) -> Evidence:
    """Both models scored with ``metric`` on the rows of ``frame`` against ``truth`` (the
    labels, in any spelling the challenger's classes match), with the paired bootstrap
    interval at ``loop.confidence`` from ``loop.bootstrap`` resamples."""
    from loopml.loop import compare

    classes = challenger.classes
    if challenger.task == "classification":
        if classes is None:
            classes = tuple(getattr(challenger.model, "classes_", ()))
        truth = [match_label(v, classes) for v in list(truth)]
    comparison = compare(
        truth, outputs(champion, frame, classes), outputs(challenger, frame, classes),
        task=challenger.task, metric=metric, classes=classes,
        positive_label=challenger.positive_label, bootstrap=policy.bootstrap,
        confidence=policy.confidence, seed=seed,
    )
    return Evidence(name=name, comparison=comparison, start=start, end=end)
