"""What 'loopml run' prints about the search: the frontier's best points, the chosen model
and why, the ensemble's members with their weights."""

from __future__ import annotations

from rich.console import Console

from loopml.cli._render import frontier_table, leaderboard_table, search_rows
from loopml.core.records import Candidate, Leaderboard


def _c(name: str, score: float, fit: float, weight: float = 0.0) -> Candidate:
    return Candidate(learner=name.split("/")[0], name=name, params={}, cv_score=score,
                     cv_std=0.01, valid_score=None, fit_time_s=fit, trial=0,
                     predict_ms_per_1000=fit * 10, ensemble_weight=weight)


def _board() -> Leaderboard:
    linear = _c("linear/default", 0.80, 0.1)
    knn = _c("knn/default", 0.78, 0.3)  # slower and worse than linear: off the frontier
    forest = _c("random_forest/default", 0.86, 2.0, 0.3)
    lgbm = _c("lightgbm/default", 0.88, 4.0, 0.7)
    lgbm_slow = _c("lightgbm/optuna-2", 0.87, 9.0)  # off the frontier
    tiny = _c("hist_gbm/default", 0.84, 1.0)
    ensemble = Candidate(learner="ensemble", name="ensemble", origin="ensemble", params={},
                         cv_score=0.89, cv_std=0.01, valid_score=None, fit_time_s=6.0, trial=6,
                         predict_ms_per_1000=80.0, ensemble_weight=1.0)
    return Leaderboard(
        metric="roc_auc", greater_is_better=True, best=ensemble, seconds=29.6, budget_s=30,
        candidates=(linear, knn, forest, lgbm, lgbm_slow, tiny, ensemble), final="ensemble",
        ensemble=(("lightgbm/default", 0.7), ("random_forest/default", 0.3)),
        reason="the ensemble beats lightgbm/default by 0.01 roc_auc out of fold",
        deterministic=True,
    )


def _text(renderable) -> str:
    console = Console(width=120, record=True)
    console.print(renderable)
    return console.export_text()


def test_frontier_shows_its_most_accurate_points_fastest_first_with_the_winner() -> None:
    """Four frontier points: score, fit and predict time; off-frontier candidates are left out
    and the chosen model is starred."""
    text = _text(frontier_table(_board()))
    names = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")]
    assert names == ["hist_gbm/default", "random_forest/default", "lightgbm/default",
                     "ensemble *"]
    assert "0.89" in text and "6.00 s" in text and "80.0 ms" in text
    assert "knn" not in text and "optuna-2" not in text


def test_summary_says_what_was_chosen_why_and_the_ensemble_weights() -> None:
    rows = dict(search_rows(_board()))
    assert rows["candidates"].startswith("7 tried in 30 s of 30 s, deterministic")
    assert rows["chosen"] == ("ensemble (cv roc_auc 0.89 ± 0.01): the ensemble beats "
                              "lightgbm/default by 0.01 roc_auc out of fold")
    assert rows["ensemble"] == "lightgbm/default 0.70, random_forest/default 0.30"


def test_an_old_leaderboard_without_names_still_reads() -> None:
    """Runs before names and reasons were kept show the family and the score."""
    old = Candidate(learner="lightgbm", params={}, cv_score=0.9, cv_std=None,
                    valid_score=0.88, fit_time_s=1.0, trial=3)
    board = Leaderboard(metric="rmse", greater_is_better=False, candidates=(old,), best=old,
                        seconds=3.0)
    rows = dict(search_rows(board))
    assert rows["chosen"] == "lightgbm (cv rmse 0.9, validation 0.88)"
    assert "ensemble" not in rows
    assert "lightgbm *" in _text(frontier_table(board))


def test_leaderboard_shows_the_first_candidates_with_weights_and_the_winner() -> None:
    """The run prints the leaderboard's first rows: score, spread, fit and predict time,
    ensemble weight; the chosen model is starred and the title says how many were left."""
    text = _text(leaderboard_table(_board(), rows=4))
    assert "4 of 7 candidates by cv roc_auc" in text
    names = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")]
    assert names == ["linear/default", "knn/default", "random_forest/default",
                     "lightgbm/default"]
    assert "0.8800" in text and "0.70" in text and "40.0" in text
    full = _text(leaderboard_table(_board(), rows=20))
    assert "ensemble ★" in full and "7 of 7" in full
