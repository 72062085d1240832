"""Cross-validation runs folds side by side; what a candidate gets must not depend on it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from loopml.quality import infer_contract
from loopml.train._cv import FoldCache, cross_fit, make_folds, problem_for
from loopml.train._learners import get_learner
from loopml.train._portfolio import Spec
from tests.conftest import sklearn_frame


@pytest.fixture(scope="module")
def wine() -> tuple:
    frame = sklearn_frame("wine")
    contract = infer_contract(frame, source="s", target="target")
    columns = [c for c in contract.names if c != "target"]
    y = frame["target"].to_numpy()
    folds, _ = make_folds(frame, y, task="classification", strategy="random",
                          time_column=None, group_column=None, k=5, seed=0)
    cache = FoldCache(frame, y, folds, contract=contract, columns=columns,
                      task="classification")
    problem = problem_for("classification", "log_loss", False, y, None, seed=0, threads=2,
                          deterministic=True)
    return cache, problem, y


@pytest.mark.parametrize("learner", ["lightgbm", "extra_trees", "linear"])
def test_folds_side_by_side_give_what_one_at_a_time_gives(wine: tuple, learner: str) -> None:
    """Two folds at once (one thread each) and one fold at a time: the same out-of-fold
    predictions, fold scores and boosting rounds."""
    cache, problem, y = wine
    params = get_learner(learner).defaults("classification")
    spec = Spec(learner, "default", {**params, "n_estimators": 50}
                if learner == "extra_trees" else params)
    runs = [cross_fit(spec, cache, dataclasses.replace(problem, threads=t), sample_weight=None,
                      stop=lambda: False, prune=lambda i, s: False) for t in (1, 2)]
    assert [r.status for r in runs] == ["ok", "ok"]
    assert np.array_equal(runs[0].oof, runs[1].oof)
    assert runs[0].fold_scores == runs[1].fold_scores and len(runs[0].fold_scores) == 5
    assert runs[0].rounds == runs[1].rounds
    assert runs[0].score < 0.5  # log loss on wine: it learned
    assert not np.isnan(runs[1].oof).any()
    assert np.allclose(runs[1].oof.sum(axis=1), 1.0, atol=1e-12)


def test_a_pruned_candidate_keeps_its_first_fold_only(wine: tuple) -> None:
    """Pruned on its first fold, a candidate reports that fold's score, whichever other fold
    finished meanwhile, and no out-of-fold predictions."""
    cache, problem, _ = wine
    asked: list[int] = []

    def prune(i: int, score: float) -> bool:
        asked.append(i)
        return True

    trial = cross_fit(Spec("linear", "default", {"C": 1.0}), cache, problem, sample_weight=None,
                      stop=lambda: False, prune=prune)
    assert trial.status == "pruned" and "first fold" in trial.message
    assert asked == [0] and len(trial.fold_scores) == 1 and trial.oof is None


def test_a_failing_configuration_fails_its_candidate_only(wine: tuple) -> None:
    cache, problem, _ = wine
    trial = cross_fit(Spec("lightgbm", "bad", {"num_leaves": -3}), cache, problem,
                      sample_weight=None, stop=lambda: False, prune=lambda i, s: False)
    assert trial.status == "failed" and "num_leaves" in trial.message
    ok = cross_fit(Spec("linear", "default", {"C": 1.0}), cache, problem, sample_weight=None,
                   stop=lambda: False, prune=lambda i, s: False)
    assert ok.status == "ok"


def test_stop_before_a_fold_ends_the_candidate(wine: tuple) -> None:
    cache, problem, _ = wine
    trial = cross_fit(Spec("linear", "default", {"C": 1.0}), cache, problem, sample_weight=None,
                      stop=lambda: True, prune=lambda i, s: False)
    assert trial.status == "pruned" and "time budget" in trial.message
    assert 1 <= len(trial.fold_scores) < 5 and trial.oof is None
