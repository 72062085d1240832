"""The model report: test metrics and the task's plots (confusion matrix, ROC and PR curves;
residuals; cluster sizes), feature importance, and the leaderboard of the search."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from loopml.core.records import Candidate, Evaluation, Leaderboard
from loopml.reports._figures import BLUE, ORANGE, bars, curve, heatmap, layout, scatter
from loopml.reports._page import Page, num, render_page

MAX_POINTS = 4000  # residual points drawn; more only slow the browser down
MAX_IMPORTANCES = 30
PALETTE = ("#3569a8", "#e07b39", "#3a9a5b", "#8e5ab5", "#c2477a", "#5fa3b8", "#a08a3c")


def render_model(
    evaluation: Evaluation | None, *, leaderboard: Leaderboard | None, title: str | None
) -> str:
    """The model report of ``evaluation`` and/or ``leaderboard`` as one HTML page."""
    page = Page()
    plots: list[tuple[str, Any]] = []
    if evaluation is not None:
        plots = _task_plots(page, evaluation)
        if evaluation.feature_importance is not None:
            plots.append(("Feature importance", _importance(page, evaluation)))
    context: dict[str, Any] = {
        "kind": "model",
        "title": title or _default_title(evaluation),
        "subtitle": _subtitle(evaluation, leaderboard),
        "overview": _overview(evaluation, leaderboard),
        "metrics": _metrics(evaluation) if evaluation is not None else [],
        "plots": plots,
        "leaderboard": _leaderboard(page, leaderboard) if leaderboard is not None else None,
    }
    context["nav"] = [("overview", "Overview")]
    if evaluation is not None:
        context["nav"] += [("metrics", "Metrics")] + ([("plots", "Plots")] if plots else [])
    if leaderboard is not None:
        context["nav"].append(("leaderboard", "Leaderboard"))
    return render_page("model.html.j2", page, **context)


def _default_title(evaluation: Evaluation | None) -> str:
    if evaluation is None:
        return "Model search leaderboard"
    return f"Model evaluation: {evaluation.task}"


def _subtitle(evaluation: Evaluation | None, leaderboard: Leaderboard | None) -> str:
    parts = []
    if evaluation is not None:
        parts += [f"{evaluation.rows:,} test rows", f"primary metric: {evaluation.metric}"]
    if leaderboard is not None:
        parts.append(f"{len(leaderboard.candidates)} candidates searched")
    return " · ".join(parts)


def _overview(
    evaluation: Evaluation | None, leaderboard: Leaderboard | None
) -> list[tuple[str, str, str]]:
    out = []
    if evaluation is not None:
        direction = "higher is better" if evaluation.greater_is_better else "lower is better"
        out += [
            (evaluation.metric, num(evaluation.metrics.get(evaluation.metric)), direction),
            ("Task", evaluation.task, ""),
            ("Test rows", num(evaluation.rows), "scored once"),
        ]
    if leaderboard is not None:
        best = leaderboard.best
        out += [
            ("Best learner", best.learner, f"trial {best.trial}"),
            (f"Best CV {leaderboard.metric}", num(best.cv_score), _pm(best.cv_std)),
            ("Search time", f"{num(round(leaderboard.seconds, 1))} s",
             f"{len(leaderboard.candidates)} candidates"),
        ]  # fmt: skip
    return out


def _metrics(evaluation: Evaluation) -> list[tuple[str, str, bool]]:
    names = sorted(evaluation.metrics, key=lambda m: (m != evaluation.metric, m))
    return [(m, num(evaluation.metrics[m]), m == evaluation.metric) for m in names]


def _task_plots(page: Page, evaluation: Evaluation) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if evaluation.confusion is not None:
        out.append(("Confusion matrix", _confusion(page, evaluation)))
    if evaluation.roc is not None:
        fpr, tpr = evaluation.roc
        auc = evaluation.metrics.get("roc_auc")
        name = "ROC curve" + (f" (AUC {num(auc)})" if auc is not None else "")
        fig = curve(fpr, tpr, title=name, x_title="false positive rate",
                    y_title="true positive rate", diagonal=True)  # fmt: skip
        out.append(("ROC curve", page.plot(fig)))
    if evaluation.pr is not None:
        recall, precision = evaluation.pr
        ap = evaluation.metrics.get("average_precision")
        name = "Precision-recall curve" + (f" (AP {num(ap)})" if ap is not None else "")
        fig = curve(recall, precision, title=name, x_title="recall", y_title="precision")
        out.append(("Precision-recall curve", page.plot(fig)))
    if evaluation.residuals is not None:
        out += _residuals(page, evaluation)
    if evaluation.cluster_sizes is not None:
        sizes = evaluation.cluster_sizes
        labels = evaluation.labels if len(evaluation.labels) == len(sizes) else range(len(sizes))
        fig = bars([f"cluster {c}" for c in labels], sizes, title="Rows per cluster",
                   y_title="rows")  # fmt: skip
        out.append(("Cluster sizes", page.plot(fig)))
    return out


def _confusion(page: Page, evaluation: Evaluation) -> Any:
    matrix = evaluation.confusion or ()
    labels = list(evaluation.labels) or [str(i) for i in range(len(matrix))]
    shares = [[v / (sum(row) or 1) for v in row] for row in matrix]
    text = [[f"{v:,}<br>{s:.0%}" for v, s in zip(row, srow)] for row, srow in zip(matrix, shares)]
    fig = heatmap(shares, labels, labels, title="Confusion matrix (share of each actual class)",
                  x_title="predicted", y_title="actual", zmin=0, zmax=1, text=text,
                  height=max(320, min(700, 60 * len(labels) + 140)))  # fmt: skip
    return page.plot(fig)


def _residuals(page: Page, evaluation: Evaluation) -> list[tuple[str, Any]]:
    predicted, actual = evaluation.residuals or ((), ())
    step = max(1, len(predicted) // MAX_POINTS)
    p, a = list(predicted[::step]), list(actual[::step])
    if not p:
        return []
    lo, hi = min(min(p), min(a)), max(max(p), max(a))
    shown = "" if step == 1 else f" ({len(p):,} of {len(predicted):,} points)"
    versus = scatter(p, a, title=f"Predicted vs actual{shown}", x_title="predicted",
                     y_title="actual", line=((lo, lo), (hi, hi)))  # fmt: skip
    residual = [y - x for x, y in zip(p, a)]
    spread = scatter(p, residual, title=f"Residuals vs predicted{shown}", x_title="predicted",
                     y_title="actual − predicted", line=((min(p), 0), (max(p), 0)))  # fmt: skip
    return [("Predicted vs actual", page.plot(versus)),
            ("Residuals", page.plot(spread))]  # fmt: skip


def _importance(page: Page, evaluation: Evaluation) -> Any:
    names, values = evaluation.feature_importance or ((), ())
    ranked = sorted(zip(names, values), key=lambda nv: -abs(nv[1]))[:MAX_IMPORTANCES]
    fig = bars([n for n, _ in ranked], [v for _, v in ranked], horizontal=True,
               title="Feature importance", x_title="importance")  # fmt: skip
    return page.plot(fig)


def _leaderboard(page: Page, board: Leaderboard) -> dict[str, Any]:
    def order(c: Candidate) -> tuple[bool, float]:
        score = c.cv_score if c.cv_score is not None else c.valid_score
        if score is None:
            return (True, 0.0)
        return (False, -score if board.greater_is_better else score)

    ranked = sorted(board.candidates, key=order)
    rows = [
        {
            "rank": i + 1,
            "learner": c.learner,
            "trial": c.trial,
            "cv": num(c.cv_score),
            "cv_std": _pm(c.cv_std),
            "valid": num(c.valid_score),
            "fit": f"{num(round(c.fit_time_s, 2))} s",
            "status": c.status,
            "message": c.message,
            "params": _params(c.params),
            "best": c == board.best,
        }
        for i, c in enumerate(ranked)
    ]
    direction = "higher is better" if board.greater_is_better else "lower is better"
    return {"rows": rows, "metric": board.metric, "direction": direction,
            "plot": _search_plot(page, board)}  # fmt: skip


def _search_plot(page: Page, board: Leaderboard) -> Any:
    scored = [c for c in board.candidates if c.cv_score is not None]
    if not scored:
        return None
    traces = []
    learners = sorted({c.learner for c in scored})
    for i, learner in enumerate(learners):
        mine = sorted((c for c in scored if c.learner == learner), key=lambda c: c.trial)
        traces.append(go.Scatter(
            x=[c.trial for c in mine], y=[c.cv_score for c in mine], mode="markers",
            name=learner, marker={"color": PALETTE[i % len(PALETTE)], "size": 8},
            error_y={"type": "data", "array": [c.cv_std or 0 for c in mine],
                     "thickness": 1, "width": 0},
            hovertext=[f"{learner} trial {c.trial}<br>cv {num(c.cv_score)} {_pm(c.cv_std)}"
                       for c in mine], hoverinfo="text",
        ))  # fmt: skip
    best = board.best
    if best.cv_score is not None:
        traces.append(go.Scatter(
            x=[best.trial], y=[best.cv_score], mode="markers", name="best",
            marker={"symbol": "star", "size": 16, "color": ORANGE, "line": {"color": BLUE}},
        ))  # fmt: skip
    fig = go.Figure(traces, layout=layout(
        f"Cross-validated {board.metric} per trial", height=320, showlegend=True,
        xaxis={"title": {"text": "trial"}}, yaxis={"title": {"text": board.metric}},
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
    ))  # fmt: skip
    return page.plot(fig)


def _params(params: dict[str, Any]) -> str:
    parts = []
    for key, value in params.items():
        shown = num(value) if isinstance(value, int | float) else str(value)
        parts.append(f"{key}={shown}")
    return ", ".join(parts)


def _pm(std: float | None) -> str:
    return "" if std is None else f"± {num(std, 2)}"
