"""Clustering: k-means, Gaussian mixtures and HDBSCAN under a budget, on real and generated
data."""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest

from loopml.core.config import TrainingConfig
from loopml.quality import infer_contract
from loopml.train import split, train
from loopml.train._cluster import NEAR_TIE, cluster
from tests.conftest import penguins_frame, sklearn_frame


def run(frame: pl.DataFrame, **config: object):
    contract = infer_contract(frame, source="s", target=None)
    splits = split(frame, target=None, task="clustering")
    result = train(splits, contract=contract, columns=list(contract.names), task="clustering",
                   target=None, config=TrainingConfig(**{"time_budget_s": 4, **config}))
    return result, splits


@pytest.mark.parametrize("name", ["iris", "wine", "penguins"])
def test_every_family_is_tried_and_the_winner_has_the_best_silhouette(name: str) -> None:
    """On real data all three families are in the leaderboard with their silhouettes; the
    winner is within a near-tie of the best and the reason names it; the model gives cluster
    ids to the unseen test rows and survives pickling."""
    frame = penguins_frame().drop("species") if name == "penguins" else (
        sklearn_frame(name).drop("target"))
    result, splits = run(frame)
    board = result.leaderboard
    assert board.metric == "silhouette" and board.greater_is_better
    assert {c.learner for c in board.candidates} == {"kmeans", "gaussian_mixture", "hdbscan"}
    scored = [c.cv_score for c in board.candidates if c.cv_score is not None]
    assert board.best.cv_score >= max(scored) - NEAR_TIE
    assert board.reason.startswith(board.best.name) and "Davies-Bouldin" in board.reason
    assert "silhouette on" in board.cv and result.task == "clustering"
    labels = result.model.predict(splits.test)
    assert len(labels) == splits.test.height and np.issubdtype(np.asarray(labels).dtype,
                                                                np.integer)
    again = pickle.loads(pickle.dumps(result.model))
    assert (again.predict(splits.test) == labels).all()


def test_well_separated_blobs_give_their_number_of_clusters_and_ids_are_dropped() -> None:
    """Four generated blobs are found as four clusters; an id column is dropped with the
    reason in the leaderboard and is not needed to predict."""
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score

    X, truth = make_blobs(800, n_features=3, centers=4, cluster_std=0.6, random_state=2)
    frame = pl.DataFrame(X, schema=["a", "b", "c"]).with_columns(
        pl.Series("truth", truth), pl.Series("customer", np.arange(800)))
    result, splits = run(frame.drop("truth"), learners=("kmeans", "gaussian_mixture"))
    board = result.leaderboard
    reason = dict(board.dropped_features)["customer"]
    assert reason.startswith("id-like: 680 of 680 values distinct")
    assert result.feature_columns == ("a", "b", "c")
    assert {c.learner for c in board.candidates} == {"kmeans", "gaussian_mixture"}
    labels = result.model.predict(frame.select("a", "b", "c"))
    assert len(np.unique(labels)) == 4 and adjusted_rand_score(truth, labels) > 0.95
    mixtures = [c for c in board.candidates if c.learner == "gaussian_mixture"]
    assert all("BIC" in c.message for c in mixtures)


def test_hdbscan_finds_shapes_k_means_cannot_and_assigns_new_rows() -> None:
    """Two interleaved half-moons with scattered noise: HDBSCAN alone separates them; its
    noise share is reported, and new rows get the cluster of their nearest clustered rows."""
    from sklearn.datasets import make_moons
    from sklearn.metrics import adjusted_rand_score

    X, truth = make_moons(600, noise=0.05, random_state=0)
    rng = np.random.default_rng(0)
    noise = rng.uniform(X.min(axis=0), X.max(axis=0), size=(20, 2))
    frame = pl.DataFrame(np.vstack([X, noise]), schema=["x", "y"])
    result, _ = run(frame, learners=("hdbscan",))
    board = result.leaderboard
    assert {c.learner for c in board.candidates} == {"hdbscan"}
    assert "noise" in board.best.message
    model = result.model[-1]
    assert 0 < model.noise_share_ < 0.2 and model.n_clusters_ == 2
    labels = result.model.predict(pl.DataFrame(X, schema=["x", "y"]))
    assert set(labels) <= {0, 1} and adjusted_rand_score(truth, labels) > 0.95


def test_deterministic_mode_counts_candidates_and_repeats_itself() -> None:
    """With training.deterministic the search tries max_trials candidates, whatever the
    clock, and two runs give the same clusters."""
    frame = sklearn_frame("wine").drop("target")
    first, splits = run(frame, deterministic=True, max_trials=5)
    second, _ = run(frame, deterministic=True, max_trials=5)
    assert len(first.leaderboard.candidates) == 5 and first.leaderboard.deterministic
    assert (first.model.predict(splits.test) == second.model.predict(splits.test)).all()


def test_large_data_uses_mini_batch_k_means() -> None:
    """From 20,000 rows on, k-means is mini-batch; mixtures and HDBSCAN fit on a sample and
    still label every row."""
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(30_000, n_features=2, centers=3, random_state=1)
    frame = pl.DataFrame(X, schema=["a", "b"])
    contract = infer_contract(frame, source="s", target=None)
    splits = split(frame, target=None, task="clustering")
    result = cluster(splits, contract=contract, columns=["a", "b"],
                     config=TrainingConfig(time_budget_s=6, deterministic=True, max_trials=7))
    learners = [c.learner for c in result.leaderboard.candidates]
    assert "minibatch_kmeans" in learners and "kmeans" not in learners
    assert "hdbscan" in learners and "gaussian_mixture" in learners
    assert len(result.model.predict(splits.test)) == splits.test.height


def test_nothing_to_cluster_on_is_a_clear_error() -> None:
    """A frame of ids and constants has no column to cluster on; the error says why."""
    from loopml.core.errors import TrainingError

    frame = pl.DataFrame({"id": range(100), "k": ["x"] * 100})
    contract = infer_contract(frame, source="s", target=None)
    with pytest.raises(TrainingError) as info:
        cluster(split(frame, target=None, task="clustering"), contract=contract,
                columns=["id", "k"], config=TrainingConfig(time_budget_s=2))
    assert "id: id-like" in info.value.message and "k: constant" in info.value.message
