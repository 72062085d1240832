"""The profile report: overview (with where it sampled), warnings, quarantine, target
balance, features ranked by association, missingness patterns, correlations, trends over
time, anomalous rows, duplicates, and one block per column with its statistics and plots."""

from __future__ import annotations

from typing import Any

from loopml.core.records import ColumnProfile, LabelQuality, Leakage, Profile
from loopml.reports._eda import (
    anomalies_section,
    duplicates_section,
    matrix_plots,
    missing_section,
    quarantine_section,
    sampling_notes,
    trends_section,
)
from loopml.reports._figures import BLUE, GREY, ORANGE, bars, heatmap
from loopml.reports._page import Page, num, pct, render_page, when

STAT_NAMES = {
    "mean": "mean", "std": "std", "min": "min", "q25": "25%", "median": "median",
    "q75": "75%", "max": "max", "zeros": "zeros", "negatives": "negatives",
    "skew": "skewness", "true_share": "share true", "top_share": "top value share",
    "other_share": "share beyond top values", "mean_length": "mean length",
    "min_length": "min length", "max_length": "max length", "span_days": "span (days)",
    "quantile_rank_error": "quantiles' rank error (±, sketched)",
    "distinct_error": "distinct count error (±, sketched)",
    "top_count_error": "top value counts low by at most (sketched)",
}  # fmt: skip
SHARE_STATS = {"true_share", "top_share", "other_share", "quantile_rank_error", "distinct_error"}
MAX_RANKED = 40
MAX_SCORES = 15  # single-feature scores listed in the leakage section
METRIC_NAMES = {"roc_auc": "ROC AUC", "balanced_accuracy": "balanced accuracy", "r2": "R²"}


def render_profile(profile: Profile, *, title: str | None = None) -> str:
    """The profile report of ``profile`` as one HTML page."""
    page = Page()
    target_col = next((c for c in profile.columns if c.name == profile.target), None)
    positive = _positive_label(profile, target_col)
    features = [c for c in profile.columns if c.name != profile.target]
    ranked = sorted(features, key=lambda c: -(c.association or 0.0))
    has_relation = any(c.target_relation for c in features)
    columns = ([target_col] if target_col else []) + (ranked if has_relation else features)
    anchors = {c.name: f"col-{i}" for i, c in enumerate(columns)}
    context: dict[str, Any] = {
        "kind": "profile",
        "title": title or f"Profile of {profile.source}",
        "subtitle": _subtitle(profile),
        "overview": _overview(profile, positive),
        "warnings": [(c.name, w, anchors[c.name]) for c in profile.columns for w in c.warnings],
        "target_plot": _target_plot(page, profile, positive),
        "positive": positive,
        "association_plot": _association_plot(page, ranked) if has_relation else None,
        "quarantine": quarantine_section(page, profile),
        "missing_plot": _missing_plot(page, profile),
        "missing": missing_section(page, profile),
        "correlation_plot": _correlation_plot(page, profile),
        "labels": _label_quality(profile.label_quality),
        "leakage": _leakage(profile.leakage, anchors),
        "matrix_plots": matrix_plots(page, profile),
        "trends": trends_section(page, profile, positive),
        "anomalies": anomalies_section(profile),
        "duplicates": duplicates_section(profile),
        "sampling": sampling_notes(profile),
        "summary": [_summary_row(c, profile.rows) | {"anchor": anchors[c.name]} for c in columns],
        "columns": [
            _column_block(page, c, profile, positive) | {"anchor": anchors[c.name]}
            for c in columns
        ],
    }
    context["nav"] = [
        (anchor, label)
        for anchor, label, shown in (
            ("overview", "Overview", True),
            ("warnings", "Warnings", bool(context["warnings"])),
            ("quarantine", "Quarantine", context["quarantine"] is not None),
            ("target", "Target", context["target_plot"] is not None),
            ("association", "Relationship to target", has_relation),
            ("missing", "Missing values", True),
            ("correlations", "Correlations", bool(context["correlation_plot"]
                                                  or context["matrix_plots"])),
            ("trends", "Trends", context["trends"] is not None),
            ("anomalies", "Anomalies", context["anomalies"] is not None),
            ("duplicates", "Duplicates", context["duplicates"] is not None),
            ("labels", "Label quality", context["labels"] is not None),
            ("leakage", "Leakage", context["leakage"] is not None),
            ("columns", "Columns", True),
        )
        if shown
    ]
    return render_page("profile.html.j2", page, **context)


def _positive_label(profile: Profile, target: ColumnProfile | None) -> str | None:
    index = None if target is None else target.stats.get("positive_index")
    if index is None or profile.target_distribution is None:
        return None
    labels = profile.target_distribution[0]
    return labels[int(index)] if 0 <= int(index) < len(labels) else None


def _task_note(profile: Profile, positive: str | None) -> str:
    """The task, and the positive class training scores (the profile's, by the same rule),
    spelled as in the class balance."""
    if profile.positive_label is None or positive is None:
        return profile.task
    return f"{profile.task}; positive class: {positive}"


def _subtitle(profile: Profile) -> str:
    parts = [f"{profile.rows:,} rows", f"{len(profile.columns)} columns", f"task: {profile.task}"]
    if profile.target:
        parts.insert(2, f"target: {profile.target}")
    if profile.table is not None:
        parts.append(f"table {profile.table}")
    return " · ".join(parts)


def _overview(profile: Profile, positive: str | None) -> list[tuple[str, str, str]]:
    cells = profile.rows * len(profile.columns)
    missing = sum(c.nulls for c in profile.columns)
    warned = sum(1 for c in profile.columns if c.warnings)
    sampled = profile.sampled_rows
    kinds: dict[str, int] = {}
    for c in profile.columns:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    return [
        ("Rows", num(profile.rows), ""),
        ("Columns", num(len(profile.columns)), ", ".join(f"{n} {k}" for k, n in kinds.items())),
        ("Target", profile.target or "—", _task_note(profile, positive)),
        ("Missing cells", pct(missing / cells if cells else 0), f"{missing:,} cells"),
        ("Columns with warnings", num(warned), ""),
        *_more_cards(profile),
        (
            "Relationships computed on",
            num(sampled if sampled is not None else profile.rows),
            "rows (a random sample)" if sampled and sampled < profile.rows else "rows (all)",
        ),
    ]


def _more_cards(profile: Profile) -> list[tuple[str, str, str]]:
    out = []
    if profile.duplicates is not None:
        d = profile.duplicates
        out.append(("Duplicate rows", num(d.rows), f"in {d.groups:,} groups of identical rows"))
    if profile.quarantine is not None:
        out.append(("Quarantined rows", num(profile.quarantine.rows), profile.quarantine.table))
    if profile.trends is not None:
        t = profile.trends
        out.append(("Time span", f"{len(t.labels)} × {t.period}", f"by {t.time_column}"))
    return out


def _target_plot(page: Page, profile: Profile, positive: str | None) -> Any:
    if profile.target_distribution is None:
        return None
    labels, counts = profile.target_distribution
    if profile.task == "classification":
        total = sum(counts) or 1
        colors = [ORANGE if label == positive else BLUE for label in labels]
        hover = [f"{label}: {n:,} rows ({n / total:.1%})" for label, n in zip(labels, counts)]
        fig = bars(labels, counts, title=f"Class balance of {profile.target}", x_title="class",
                   y_title="rows", color=colors, hover=hover, horizontal=len(labels) > 12)
    else:
        fig = bars(labels, counts, title=f"Distribution of {profile.target}", y_title="rows",
                   x_title=profile.target or "")
    return page.plot(fig)


def _association_plot(page: Page, ranked: list[ColumnProfile]) -> Any:
    shown = [c for c in ranked if c.association is not None][:MAX_RANKED]
    colors = [ORANGE if any(w.startswith("possible leak") for w in c.warnings) else BLUE
              for c in shown]  # fmt: skip
    fig = bars([c.name for c in shown], [c.association for c in shown], horizontal=True,
               title="Association with the target (0 = none, 1 = determines it)",
               x_title="association", color=colors, xaxis={"range": [0, 1]})
    return page.plot(fig)


def _missing_plot(page: Page, profile: Profile) -> Any:
    missing = sorted((c for c in profile.columns if c.nulls), key=lambda c: -c.nulls)
    if not missing or not profile.rows:
        return None
    shares = [c.nulls / profile.rows for c in missing]
    hover = [f"{c.name}: {c.nulls:,} missing ({s:.1%})" for c, s in zip(missing, shares)]
    fig = bars([c.name for c in missing], shares, horizontal=True, hover=hover, color=GREY,
               title="Share of rows missing a value", x_title="missing",
               xaxis={"tickformat": ".0%", "range": [0, max(shares) * 1.05]})
    return page.plot(fig)


def _correlation_plot(page: Page, profile: Profile) -> Any:
    if profile.correlations is None:
        return None
    names, matrix = profile.correlations
    text = [[f"{v:.2f}" for v in row] for row in matrix] if len(names) <= 16 else None
    fig = heatmap(matrix, names, names, colorscale="RdBu", zmin=-1, zmax=1, text=text,
                  title="Pearson correlation of numeric columns")
    return page.plot(fig)


def _summary_row(column: ColumnProfile, rows: int) -> dict[str, Any]:
    return {
        "name": column.name,
        "kind": column.kind,
        "missing": pct(column.nulls / rows if rows else 0),
        "distinct": num(column.distinct),
        "association": num(column.association, 3) if column.association is not None else "—",
        "warnings": len(column.warnings),
    }


def _column_block(
    page: Page, column: ColumnProfile, profile: Profile, positive: str | None
) -> dict[str, Any]:
    stats = [("values", num(column.count)), ("missing", num(column.nulls)),
             ("distinct", num(column.distinct))]  # fmt: skip
    for key, value in column.stats.items():
        if key == "positive_index":
            continue
        if column.kind == "datetime" and key in ("min", "max"):
            stats.append((key, when(value)))
        elif key in SHARE_STATS:
            stats.append((STAT_NAMES[key], pct(value)))
        else:
            stats.append((STAT_NAMES.get(key, key), num(value)))
    if column.association is not None:
        stats.append(("association with target", num(column.association, 3)))
    return {
        "name": column.name,
        "kind": column.kind,
        "is_target": column.name == profile.target,
        "warnings": column.warnings,
        "stats": stats,
        "distribution": _distribution_plot(page, column),
        "relation": _relation_plot(page, column, profile, positive),
    }


def _distribution_plot(page: Page, column: ColumnProfile) -> Any:
    if column.histogram is not None:
        labels, counts = column.histogram
        dense = {"nticks": 10, "tickangle": -30} if len(labels) > 12 else {}
        fig = bars(labels, counts, title="Distribution", y_title="rows", height=280,
                   xaxis={"type": "category", **dense})
        return page.plot(fig)
    if column.top_values is not None:
        labels, counts = column.top_values
        fig = bars(labels, counts, title="Most frequent values", x_title="rows",
                   horizontal=True, height=min(420, max(160, 20 * len(labels) + 70)))
        return page.plot(fig)
    return None


def _relation_plot(
    page: Page, column: ColumnProfile, profile: Profile, positive: str | None
) -> Any:
    if column.target_relation is None:
        return None
    labels, values, rows = column.target_relation
    if profile.task == "classification":
        y_title = f"share of {profile.target} = {positive}" if positive else "positive rate"
        y_format = ".0%"
    else:
        y_title, y_format = f"mean {profile.target}", ""
    hover = [f"{label}<br>{y_title}: {num(v)}<br>{n:,} rows"
             for label, v, n in zip(labels, values, rows)]  # fmt: skip
    total = sum(rows) or 1
    overall = sum(v * n for v, n in zip(values, rows)) / total
    # the overall rate as a dotted line across the plot (a layout shape: cheaper than
    # Figure.add_hline, which this report would call once per column)
    line = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": overall,
            "y1": overall, "line": {"dash": "dot", "color": GREY}}
    note = {"text": "overall", "xref": "paper", "x": 0, "xanchor": "left", "yref": "y",
            "y": overall, "yanchor": "bottom", "showarrow": False}
    fig = bars(labels, values, title="Relationship to the target", y_title=y_title,
               hover=hover, height=280, color=ORANGE, yaxis={"tickformat": y_format,
               "title": {"text": y_title}}, shapes=[line], annotations=[note])  # fmt: skip
    return page.plot(fig)


def _label_quality(quality: LabelQuality | None) -> dict[str, Any] | None:
    """Conflicts, class balance and suspected mislabels, as the template shows them."""
    if quality is None:
        return None
    cards = [
        ("Conflicting labels", num(quality.conflicting_rows),
         f"rows in {quality.conflicting_groups:,} groups of identical features"),
    ]
    if quality.imbalance_ratio is not None:
        cards.append(("Imbalance ratio", f"{quality.imbalance_ratio:.1f} : 1",
                      "imbalanced" if quality.imbalanced else "largest class per smallest"))
    if quality.model:
        share = quality.suspected / quality.sampled_rows if quality.sampled_rows else 0.0
        cards.append(("Suspected mislabels", num(quality.suspected),
                      f"{pct(share)} of {quality.sampled_rows:,} sampled rows"))
        if quality.estimated_noise is not None:
            cards.append(("Estimated label noise", pct(quality.estimated_noise),
                          "from the calibrated confident joint"))
    return {
        "cards": cards,
        "features": len(quality.features),
        "rows": quality.rows,
        "conflicts": [
            {"rows": c.rows,
             "features": ", ".join(f"{k}={v}" for k, v in c.features),
             "labels": ", ".join(f"{label} ({n:,})" for label, n in c.labels)}
            for c in quality.conflicts
        ],
        "shares": [(label, pct(share)) for label, share in quality.class_shares],
        "imbalanced": quality.imbalanced,
        "ratio": quality.imbalance_ratio,
        "model": quality.model,
        "folds": quality.folds,
        "sampled": quality.sampled_rows,
        "thresholds": ", ".join(f"{c}: {t:.2f}" for c, t in quality.thresholds),
        "issues": [
            {"row": i.row, "given": i.given, "suggested": i.suggested,
             "confidence": num(i.self_confidence, 3), "margin": num(i.margin, 3)}
            for i in quality.issues
        ],
    }  # fmt: skip


def _leakage(leakage: Leakage | None, anchors: dict[str, str]) -> dict[str, Any] | None:
    """Suspects with their reasons, and the best single-feature scores."""
    if leakage is None:
        return None
    suspects = [
        {"column": s.column, "anchor": anchors.get(s.column), "check": s.check,
         "reason": s.reason}
        for s in leakage.suspects
    ]  # fmt: skip
    flagged = set(leakage.columns)
    scores = [
        {"column": name, "score": num(value, 3), "flagged": name in flagged}
        for name, value in leakage.scores[:MAX_SCORES]
    ]
    return {
        "suspects": suspects,
        "scores": scores,
        "metric": METRIC_NAMES.get(leakage.metric, leakage.metric),
        "threshold": num(leakage.threshold, 3) if leakage.metric else None,
        "sampled": leakage.sampled_rows,
        "time_column": leakage.time_column,
    }
