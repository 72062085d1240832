"""Two models on the same rows: both scores and a paired bootstrap interval of the difference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from loopml.core import labels
from loopml.core.errors import LoopError
from loopml.core.records import Comparison

_CELLS = 2_000_000  # resamples x rows drawn at a time: memory bounded whatever the rows


def compare(
    y_true: Any,
    champion_pred: Any,
    challenger_pred: Any,
    *,
    task: str,
    metric: str,
    classes: Sequence[Any] | None = None,
    positive_label: Any = None,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Score champion and challenger on the same rows and bootstrap the difference.

    ``champion_pred`` and ``challenger_pred`` are each model's outputs for the rows of
    ``y_true``: class probabilities (n × classes, in ``classes`` order) for classification,
    predicted values for regression. Each of the ``bootstrap`` resamples draws the rows with
    replacement once and scores both models on that same draw (a paired bootstrap), so the
    interval reflects the difference, not the two models' separate noise. The difference is
    signed so that positive favours the challenger.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=500)
    >>> c = compare(y, y + rng.normal(0, 1.0, 500), y + rng.normal(0, 0.5, 500),
    ...             task="regression", metric="rmse", bootstrap=200, seed=1)
    >>> c.difference > 0 and c.low > 0
    True
    """
    from loopml.evaluate import greater_is_better, metric_values

    if task not in ("classification", "regression"):
        raise LoopError(
            f"Models of a {task} task have no ground truth to be compared on.",
            hint="Compare clustering models by hand ('loopml promote').",
        )
    n = len(y_true)
    if n == 0:
        raise LoopError("There are no rows to compare the two models on.")
    better = greater_is_better(metric)
    sign = 1.0 if better else -1.0
    pos = None
    if task == "classification":
        if classes is None:
            raise LoopError("Comparing classifiers needs their classes.")
        if len(classes) == 2:
            chosen = labels.positive_label(list(classes), positive_label)
            pos = labels.positive_index(classes, chosen)
    options: dict[str, Any] = {"classes": classes, "positive": pos}
    champion = float(metric_values(metric, y_true, champion_pred, **options)[0])
    challenger = float(metric_values(metric, y_true, challenger_pred, **options)[0])
    rng = np.random.default_rng(seed)
    diffs = []
    step = max(1, min(bootstrap, _CELLS // n))
    for done in range(0, bootstrap, step):
        size = min(step, bootstrap - done)
        draws = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        weights = np.bincount(draws.ravel(), minlength=size * n).reshape(size, n)
        a = metric_values(metric, y_true, champion_pred, weights=weights, **options)
        b = metric_values(metric, y_true, challenger_pred, weights=weights, **options)
        diffs.append(sign * (b - a))
    diff = np.concatenate(diffs)
    tail = (1 - confidence) / 2 * 100
    if np.isnan(diff).all():
        low = high = float("nan")
    else:
        low, high = (float(v) for v in np.nanpercentile(diff, [tail, 100 - tail]))
    return Comparison(
        metric=metric, greater_is_better=better, rows=n, champion=champion,
        challenger=challenger, difference=sign * (challenger - champion), low=low, high=high,
        confidence=confidence, bootstrap=bootstrap, seed=seed,
    )
