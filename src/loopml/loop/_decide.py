"""Champion / challenger: a new model replaces the champion only when it is better."""

from __future__ import annotations

import math

from loopml.core.records import Decision, Evaluation, ModelVersion


def decide(
    candidate: Evaluation, champion: ModelVersion | None, *, min_gain: float = 0.0
) -> Decision:
    """Whether ``candidate`` (a new model's test evaluation) becomes champion.

    The first model becomes champion. A later one must beat the champion's test score on the
    same metric by more than ``min_gain``; otherwise it becomes the challenger.

    >>> from loopml.core.records import Evaluation
    >>> e = Evaluation(task="regression", metric="rmse", greater_is_better=False,
    ...                metrics={"rmse": 3.0}, rows=10)
    >>> decide(e, None).alias
    'champion'
    """
    score = candidate.score
    if champion is None:
        return Decision(
            promote=True, alias="champion", reason="first model: no champion yet",
            candidate_score=score, champion_score=None, champion_version=None,
        )
    if champion.metric != candidate.metric:
        return Decision(
            promote=False, alias="challenger",
            reason=(
                f"the champion was judged on {champion.metric}, this model on "
                f"{candidate.metric}; promote it by hand if it should win"
            ),
            candidate_score=score, champion_score=champion.score,
            champion_version=champion.version,
        )
    if math.isnan(score):
        gain = -math.inf
    else:
        gain = score - champion.score if candidate.greater_is_better else champion.score - score
    wins = gain > min_gain
    direction = "higher" if candidate.greater_is_better else "lower"
    verb = "beats" if wins else "does not beat"
    reason = (
        f"test {candidate.metric} {score:.4f} {verb} champion v{champion.version}'s "
        f"{champion.score:.4f} ({direction} is better)"
    )
    return Decision(
        promote=wins, alias="champion" if wins else "challenger", reason=reason,
        candidate_score=score, champion_score=champion.score, champion_version=champion.version,
    )
