"""Splits and the model search: learners and hyperparameters under a time budget.

``split`` makes train/validation/test frames; ``train`` searches (Optuna, k-fold CV on the
training split), picks the best candidate on validation and refits it on train + validation.
The test split is never touched here.
"""

from loopml.train._learners import LEARNERS
from loopml.train._search import train
from loopml.train._split import split

__all__ = ["LEARNERS", "split", "train"]
