"""Splits and the model search: learners and hyperparameters under a time budget.

``split`` makes train/validation/test frames; ``train`` cross-validates a portfolio of
known-good configurations across learners on train + validation, tunes the best learners
with Optuna while the budget lasts, builds a greedy ensemble over the out-of-fold
predictions, and fits the final model within the same budget. The test split is never
touched here. With a ``SharedSearch`` (a Dask cluster and an Optuna storage its workers
share) the model-based search runs on the workers and LightGBM / XGBoost final fits use
``lightgbm.dask`` / ``xgboost.dask``.
"""

from loopml.train._fastpath import (
    CompiledModel,
    checked_compiled,
    compile_model,
    serving_form,
)
from loopml.train._final import use_threads
from loopml.train._learners import LEARNERS
from loopml.train._parallel import SharedSearch
from loopml.train._portfolio import warm_specs, warmed_with
from loopml.train._search import train
from loopml.train._split import split

__all__ = [
    "LEARNERS", "CompiledModel", "SharedSearch", "checked_compiled", "compile_model",
    "serving_form", "split",
    "train", "use_threads", "warm_specs", "warmed_with",
]
