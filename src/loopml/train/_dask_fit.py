"""Final fits by the workers of a Dask cluster together: ``lightgbm.dask`` and
``xgboost.dask`` on all training rows, split among the workers, handed back as the local
estimator a fit in this process gives (``to_local``, or the XGBoost model's own file round
trip), so the bundle, its compiled form and serving are the same as after a local fit."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from loopml.train._parallel import workers_of

if TYPE_CHECKING:
    import numpy as np


DASK_LEARNERS = {"lightgbm": "lightgbm.dask", "xgboost": "xgboost.dask"}
WAIT_FOR_WORKERS_S = 30


def fit_on_cluster(client: Any, learner_key: str, model: Any, X: np.ndarray, y: np.ndarray,
                   *, categorical: int, sample_weight: np.ndarray | None) -> Any:
    """``model`` (an unfitted LightGBM or XGBoost estimator as ``learner.make`` builds it)
    fitted on ``X``, ``y`` by the cluster's workers together (``lightgbm.dask`` or
    ``xgboost.dask``, the rows split among the workers), returned as the same local
    estimator a fit in this process gives, so bundles, the compiled form and serving see no
    difference."""
    import numpy as np

    from loopml.core.errors import ClusterError

    try:  # a worker the nanny is restarting comes back within moments
        client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
    except TimeoutError as exc:
        raise ClusterError("The Dask cluster has no workers for the final fit.",
                           hint="Start workers, or run with --cluster local.") from exc
    workers = workers_of(client)
    threads = min((t for _, t in workers), default=1)
    rows = max(1, math.ceil(len(y) / max(1, len(workers))))
    parts = _scatter_rows(client, [a for a, _ in workers], rows, X, y, sample_weight)
    with client.as_current():  # lightgbm.dask waits on the current client, not the one given
        if learner_key == "lightgbm":
            return _lightgbm(client, model, *parts, categorical=categorical)
        if learner_key == "xgboost":
            return _xgboost(client, model, *parts, y=np.asarray(y), threads=threads)
    raise ValueError(f"no distributed fit for {learner_key!r}")


def _scatter_rows(client: Any, workers: list[str], rows: int, X: np.ndarray, y: np.ndarray,
                  weights: np.ndarray | None) -> tuple[Any, Any, Any]:
    """``X``, ``y`` and ``weights`` as Dask arrays of ``rows``-row blocks, the blocks placed
    on the workers in turn (each worker then trains on the rows it holds)."""
    import dask.array as da

    starts = list(range(0, len(y), rows))

    def blocks(a: np.ndarray) -> list[Any]:
        futures = [client.scatter(a[s:s + rows], workers=[workers[i % len(workers)]],
                                  hash=False) for i, s in enumerate(starts)]
        return futures

    def array(a: np.ndarray | None) -> Any:
        if a is None:
            return None
        pieces = [da.from_delayed(f, shape=(min(rows, len(y) - s),) + a.shape[1:],
                                  dtype=a.dtype) for f, s in zip(blocks(a), starts, strict=True)]
        return da.concatenate(pieces, axis=0)

    return array(X), array(y), array(weights)


def _lightgbm(client: Any, model: Any, dX: Any, dy: Any, dw: Any, *, categorical: int) -> Any:
    import lightgbm.dask as lgbd

    cls = (lgbd.DaskLGBMClassifier if hasattr(model, "predict_proba")
           else lgbd.DaskLGBMRegressor)
    # lightgbm.dask gives each worker its own thread count
    params = {k: v for k, v in model.get_params().items() if k != "n_jobs"}
    distributed = cls(client=client, **params)
    with warnings.catch_warnings():  # it says so of n_jobs even when n_jobs is left unset
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        distributed.fit(dX, dy, sample_weight=dw,
                        categorical_feature=list(range(categorical)) or "auto")
    return distributed.to_local()


def _xgboost(client: Any, model: Any, dX: Any, dy: Any, dw: Any, *, y: np.ndarray,
             threads: int) -> Any:
    import os
    import tempfile

    import numpy as np
    import xgboost as xgb
    import xgboost.dask as xgbd

    from loopml.train._learners import EncodedClassifier

    encoded = isinstance(model, EncodedClassifier)
    inner = model.estimator if encoded else model
    params = {**inner.get_params(), "n_jobs": threads, "early_stopping_rounds": None}
    if encoded:
        from sklearn.preprocessing import LabelEncoder

        encoder = LabelEncoder().fit(y)
        dy = dy.map_blocks(encoder.transform, dtype=np.int64)
        distributed = xgbd.DaskXGBClassifier(**params)
    else:
        distributed = xgbd.DaskXGBRegressor(**params)
    distributed.client = client
    distributed.fit(dX, dy, sample_weight=dw)
    local = (xgb.XGBClassifier if encoded else xgb.XGBRegressor)(**params)
    with tempfile.TemporaryDirectory() as tmp:  # the sklearn wrapper's own round trip
        path = os.path.join(tmp, "model.json")
        distributed.save_model(path)
        local.load_model(path)
    if not encoded:
        return local
    wrapped = EncodedClassifier(model.estimator)
    wrapped.encoder_, wrapped.classes_, wrapped.estimator_ = encoder, encoder.classes_, local
    return wrapped
