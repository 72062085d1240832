"""The model report: test metrics and the task's plots (confusion matrix, ROC and PR curves;
residuals; cluster sizes), feature importance, and the leaderboard of the search with its
accuracy-versus-training-time frontier."""

from __future__ import annotations

from typing import Any

from loopml.core.records import Evaluation, Leaderboard
from loopml.reports._clusters import cluster_section
from loopml.reports._figures import bars, curve, heatmap, scatter
from loopml.reports._leaderboard import label, leaderboard_section, pm
from loopml.reports._page import Page, num, render_page

MAX_POINTS = 4000  # residual points drawn; more only slow the browser down
MAX_IMPORTANCES = 30


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
        "clusters": cluster_section(page, evaluation) if evaluation is not None else None,
        "leaderboard": (leaderboard_section(page, leaderboard) if leaderboard is not None
                        else None),
    }
    context["nav"] = [("overview", "Overview")]
    if evaluation is not None:
        context["nav"] += [("metrics", "Metrics")] + ([("plots", "Plots")] if plots else [])
    if context["clusters"] is not None:
        context["nav"].append(("clusters", "Clusters"))
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
        if evaluation.sampled is not None:
            sampled = evaluation.sampled
            out.append(("Trained on", f"{num(sampled.rows_read)} of "
                        f"{num(sampled.rows_in_table)} rows", sampled.note))
    if leaderboard is not None:
        best = leaderboard.best
        out += [
            ("Chosen model", label(best), best.learner),
            (f"Its CV {leaderboard.metric}", num(best.cv_score), pm(best.cv_std)),
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
