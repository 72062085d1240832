"""Champion / challenger decisions."""

from __future__ import annotations

from datetime import UTC, datetime

from loopml.core.records import Evaluation, ModelVersion
from loopml.loop import decide


def evaluation(metric: str, value: float, better: bool) -> Evaluation:
    return Evaluation(task="x", metric=metric, greater_is_better=better,
                      metrics={metric: value}, rows=100)


def champion(metric: str, value: float) -> ModelVersion:
    return ModelVersion(name="m", version=3, run_id="r", task="x", metric=metric, score=value,
                        metrics={metric: value}, artifact_uri="", created_at=datetime.now(UTC))


def test_first_model_is_champion() -> None:
    """With no champion, the new model is promoted."""
    d = decide(evaluation("roc_auc", 0.6, True), None)
    assert d.promote and d.alias == "champion"


def test_better_model_wins_either_direction() -> None:
    """Higher AUC wins; lower RMSE wins."""
    assert decide(evaluation("roc_auc", 0.81, True), champion("roc_auc", 0.80)).promote
    assert decide(evaluation("rmse", 9.0, False), champion("rmse", 10.0)).promote


def test_worse_or_equal_model_is_challenger() -> None:
    """A model that does not beat the champion becomes challenger, with the reason."""
    d = decide(evaluation("roc_auc", 0.80, True), champion("roc_auc", 0.80))
    assert not d.promote and d.alias == "challenger"
    assert "does not beat champion v3" in d.reason


def test_different_metrics_are_not_compared() -> None:
    """Scores on different metrics are never compared."""
    d = decide(evaluation("f1", 0.9, True), champion("roc_auc", 0.7))
    assert not d.promote and "promote it by hand" in d.reason
