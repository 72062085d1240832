"""Model selection at equal time: loopml against FLAML, default LightGBM and default CatBoost.

Each system fits on the same training rows and predicts the same held-out test rows, each in a
process of its own (one per system and dataset), with the same seed and 2 threads
(``OMP_WAIT_POLICY=PASSIVE``):

- ``loopml``: ``loopml.fit(frame, target=..., task=..., time_budget=B, metric=M)``, the
  search a project run uses (it holds out its own validation and test rows inside the
  training rows, as a project run does);
- ``flaml``: ``AutoML.fit(..., time_budget=B, metric=M, n_jobs=2)``;
- ``lightgbm``: ``LGBMClassifier`` / ``LGBMRegressor`` with defaults, no search;
- ``catboost``: ``CatBoostClassifier`` / ``CatBoostRegressor`` with defaults (its own
  categorical handling), no search: does CatBoost pay for its size as a learner?

Datasets (nothing downloaded): scikit-learn's shipped breast_cancer, wine, iris and diabetes;
palmerpenguins (species; body mass as a regression); the flights demo task (``delayed``, the
demo's features without its leaks, a sample of ``--flights-rows`` January-June flights). The
test rows are a stratified 20 % (``--seed``). Metrics, computed by one scorer in the parent on
each system's predictions: ROC AUC (binary), log loss (multiclass), RMSE (regression).
Categorical columns reach every system as pandas categories with the same categories, dates
as hours since 1970.

Reported: the metric, fit wall time (the fit call alone, in the child, with the system's
libraries imported before the clock starts) and the mean rank of
each system. Noise: a paired bootstrap of the test rows (1,000 resamples): loopml is "worse
than default LightGBM beyond noise" on a dataset when the 95 % interval of the metric
difference lies wholly on the worse side. Targets: loopml has the best mean rank; its fit wall
time is within the budget + 10 %; no dataset where it is worse than default LightGBM beyond
noise. Writes ``bench/results/automl.json`` and ``bench/results/automl.md``.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/automl.py [--budget 60]
        [--datasets iris,wine] [--systems loopml,flaml,lightgbm,catboost]

(``make bench`` runs every benchmark with ``uv sync --extra bench``, which installs FLAML and
CatBoost.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

THREADS = 2
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, str(THREADS))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "automl.json"
TABLE = HERE / "results" / "automl.md"
SYSTEMS = ("loopml", "flaml", "lightgbm", "catboost")
DATASETS = ("breast_cancer", "wine", "iris", "diabetes", "penguins_species",
            "penguins_body_mass", "flights")
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
BOOTSTRAP = 1000
TIME_SLACK = 0.10  # fit wall time target: budget + 10 %


# ---- datasets (built once, in the parent) ---------------------------------------------------


def load_dataset(name: str, flights_rows: int):
    """(frame, target, kind) with kind binary / multiclass / regression."""
    import polars as pl

    if name in ("breast_cancer", "wine", "iris", "diabetes"):
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")(as_frame=True)
        frame = pl.from_pandas(bunch.frame)
        kind = {"breast_cancer": "binary", "diabetes": "regression"}.get(name, "multiclass")
        return frame, "target", kind
    if name.startswith("penguins"):
        from palmerpenguins import load_penguins

        frame = pl.from_pandas(load_penguins())
        if name == "penguins_species":
            return frame, "species", "multiclass"
        return frame.filter(pl.col("body_mass_g").is_not_null()), "body_mass_g", "regression"
    if name == "flights":
        from loopml.pipeline._demo import LEAKS, TARGET, write_flights

        with tempfile.TemporaryDirectory() as tmp:
            train_file, _ = write_flights(Path(tmp), train_rows=flights_rows)
            frame = pl.read_csv(train_file, infer_schema_length=None, try_parse_dates=True)
        frame = frame.drop(LEAKS).filter(pl.col(TARGET).is_not_null())
        hours = (pl.col("time_hour").dt.epoch("s") / 3600).alias("time_hour")
        return frame.with_columns(hours), TARGET, "binary"
    raise SystemExit(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def write_split(frame, target: str, kind: str, folder: Path, seed: int) -> dict:
    """The same train / test rows for every system: a stratified 80 / 20 split."""
    from sklearn.model_selection import train_test_split

    idx = list(range(frame.height))
    strata = None if kind == "regression" else frame[target].to_numpy()
    train, test = train_test_split(idx, test_size=0.2, random_state=seed, stratify=strata)
    folder.mkdir(parents=True, exist_ok=True)
    frame[sorted(train)].write_parquet(folder / "train.parquet")
    frame[sorted(test)].write_parquet(folder / "test.parquet")
    meta = {"target": target, "kind": kind, "metric": METRIC[kind],
            "rows": frame.height, "train_rows": len(train), "test_rows": len(test),
            "features": frame.width - 1}
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


# ---- one system on one dataset (in its own process) -----------------------------------------


def child(system: str, folder: Path, budget: int, seed: int, out: Path) -> None:
    import polars as pl

    meta = json.loads((folder / "meta.json").read_text())
    target, kind, metric = meta["target"], meta["kind"], meta["metric"]
    train = pl.read_parquet(folder / "train.parquet")
    test = pl.read_parquet(folder / "test.parquet").drop(target)
    task = "regression" if kind == "regression" else "classification"
    info: dict = {}
    _warm(system)
    if system == "loopml":
        import loopml

        start = time.perf_counter()
        model = loopml.fit(train, target=target, task=task, time_budget=budget, metric=metric,
                           seed=seed)
        fit_s = time.perf_counter() - start
        board = model.leaderboard
        info = {"chosen": board.best.name or board.best.learner, "final": board.final,
                "candidates": len(board.candidates), "search_s": board.seconds}
        outputs = _outputs(model, test, task)
    else:
        X_train, y_train, X_test, categorical = _pandas(train, test, target)
        start = time.perf_counter()
        model = _peer(system, task, metric, budget, seed, categorical)
        if system == "flaml":
            model.fit(X_train, y_train, task=task, metric=metric, time_budget=budget,
                      n_jobs=THREADS, seed=seed, verbose=0)
            info = {"chosen": model.best_estimator, "config": model.best_config}
        else:
            model.fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        outputs = _outputs(model, X_test, task)
    result = {"fit_s": round(fit_s, 3), "info": info, **outputs}
    out.write_text(json.dumps(result, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _warm(system: str) -> None:
    """Import what a system's fit loads lazily before the clock starts: a notebook has its
    libraries loaded after the first fit, and imports on a busy machine take seconds."""
    import importlib

    modules = {
        "loopml": ("loopml.pipeline", "loopml.train", "loopml.evaluate", "optuna", "lightgbm",
                   "xgboost", "sklearn.ensemble", "sklearn.linear_model", "sklearn.neighbors"),
        "flaml": ("flaml", "flaml.automl", "lightgbm", "xgboost", "sklearn.ensemble"),
        "lightgbm": ("lightgbm",),
        "catboost": ("catboost",),
    }[system]
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional learner of the system; its fit says if it is needed
            pass


def _pandas(train, test, target: str):
    """Train and test as pandas, text columns as categories shared by both (the same input
    for every peer); CatBoost gets the text instead (see ``_peer``)."""
    import polars as pl

    both = pl.concat([train.drop(target), test], how="vertical_relaxed")
    categorical = [c for c, t in both.schema.items() if t in (pl.String, pl.Categorical)]
    frame = both.to_pandas()
    for c in categorical:
        frame[c] = frame[c].astype("category")
    n = train.height
    return frame.iloc[:n].reset_index(drop=True), train[target].to_pandas(), \
        frame.iloc[n:].reset_index(drop=True), categorical


def _peer(system: str, task: str, metric: str, budget: int, seed: int, categorical: list):
    classify = task == "classification"
    if system == "flaml":
        from flaml import AutoML

        return AutoML()
    if system == "lightgbm":
        import lightgbm as lgb

        cls = lgb.LGBMClassifier if classify else lgb.LGBMRegressor
        return cls(n_jobs=THREADS, random_state=seed, verbose=-1)
    if system == "catboost":
        import catboost as cb

        cls = cb.CatBoostClassifier if classify else cb.CatBoostRegressor
        return _CatBoost(cls(thread_count=THREADS, random_seed=seed, verbose=0,
                             allow_writing_files=False), categorical)
    raise SystemExit(f"unknown system {system!r}")


class _CatBoost:
    """CatBoost wants its categorical columns as text without missing values."""

    def __init__(self, model, categorical: list):
        self.model, self.categorical = model, categorical

    def _text(self, X):
        X = X.copy()
        for c in self.categorical:
            X[c] = X[c].astype(str).fillna("NA")
        return X

    def fit(self, X, y):
        self.model.fit(self._text(X), y, cat_features=self.categorical)
        self.classes_ = getattr(self.model, "classes_", None)
        return self

    def predict(self, X):
        return self.model.predict(self._text(X)).ravel()

    def predict_proba(self, X):
        return self.model.predict_proba(self._text(X))


def _outputs(model, X, task: str) -> dict:
    import numpy as np

    if task == "regression":
        return {"predictions": np.asarray(model.predict(X), dtype=float).tolist()}
    return {"classes": [c.item() if hasattr(c, "item") else c for c in model.classes_],
            "probabilities": np.asarray(model.predict_proba(X), dtype=float).tolist()}


# ---- the parent: run, score, rank -----------------------------------------------------------


def run_child(system: str, folder: Path, budget: int, seed: int) -> dict:
    out = folder / f"{system}.json"
    cmd = [sys.executable, __file__, "--child", system, "--data", str(folder),
           "--budget", str(budget), "--seed", str(seed), "--out", str(out)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget * 4 + 300)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1][:300] if proc.stderr else "failed"}
    result = json.loads(out.read_text())
    result["process_s"] = round(wall, 3)
    return result


def score(meta: dict, truth: list, result: dict, rows=None) -> float:
    """The dataset's metric on the test rows (``rows``: a bootstrap resample's indices)."""
    import numpy as np
    from sklearn import metrics

    y = np.asarray(truth, dtype=object)
    if rows is not None:
        y = y[rows]
    if meta["kind"] == "regression":
        pred = np.asarray(result["predictions"])
        pred = pred if rows is None else pred[rows]
        return float(np.sqrt(metrics.mean_squared_error(y.astype(float), pred)))
    proba = np.asarray(result["probabilities"])
    proba = proba if rows is None else proba[rows]
    classes = [str(c) for c in result["classes"]]
    y_text = np.asarray([str(v) for v in y])
    if meta["kind"] == "binary":
        positive = sorted(classes)[-1]
        return float(metrics.roc_auc_score(y_text == positive, proba[:, classes.index(positive)]))
    proba = np.clip(proba, 1e-15, 1)
    proba = proba / proba.sum(axis=1, keepdims=True)
    return float(metrics.log_loss(y_text, proba, labels=classes))


def worse_beyond_noise(meta: dict, truth: list, ours: dict, peer: dict, seed: int) -> dict:
    """Paired bootstrap of the test rows: the 95 % interval of (loopml − peer), oriented so
    that positive means loopml is worse."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(truth)
    sign = 1.0 if meta["metric"] != "roc_auc" else -1.0  # lower is better except ROC AUC
    diffs = []
    for _ in range(BOOTSTRAP):
        rows = rng.integers(0, n, n)
        try:
            diffs.append(sign * (score(meta, truth, ours, rows) - score(meta, truth, peer, rows)))
        except ValueError:  # a resample with one class has no ROC AUC
            continue
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"worse_by": round(float(np.mean(diffs)), 6), "interval": [round(float(low), 6),
            round(float(high), 6)], "worse_beyond_noise": bool(low > 0)}


def ranks(values: dict[str, float], higher_better: bool) -> dict[str, float]:
    """Rank per system (1 = best; ties share the mean rank; failures rank last)."""
    import scipy.stats

    systems = list(values)
    keyed = [(-v if higher_better else v) if v == v else float("inf") for v in values.values()]
    return dict(zip(systems, (float(r) for r in scipy.stats.rankdata(keyed)), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=60, help="seconds per system and dataset")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flights-rows", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", choices=SYSTEMS)
    parser.add_argument("--data", type=Path)
    args, _ = parser.parse_known_args()
    if args.child:
        child(args.child, args.data, args.budget, args.seed, args.out)
        return
    import numpy as np
    import polars as pl

    systems = [s for s in args.systems.split(",") if s]
    names = [d for d in args.datasets.split(",") if d]
    load_before = os.getloadavg()[0]
    table: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="loopml-bench-automl-") as tmp:
        for name in names:
            frame, target, kind = load_dataset(name, args.flights_rows)
            folder = Path(tmp) / name
            meta = write_split(frame, target, kind, folder, args.seed)
            truth = pl.read_parquet(folder / "test.parquet")[target].to_list()
            entry: dict = {**meta, "systems": {}}
            for system in systems:
                print(f"{name:20s} {system:9s}", end=" ", flush=True)
                result = run_child(system, folder, args.budget, args.seed)
                if "error" in result:
                    print(f"failed: {result['error']}", flush=True)
                    entry["systems"][system] = {"metric": None, "error": result["error"]}
                    continue
                value = score(meta, truth, result)
                entry["systems"][system] = {
                    "metric": round(value, 6), "fit_s": result["fit_s"],
                    "process_s": result["process_s"], "info": result["info"],
                    "_outputs": result,
                }
                print(f"{meta['metric']} {value:.4f}  fit {result['fit_s']:.1f} s", flush=True)
            values = {s: (r["metric"] if r["metric"] is not None else float("nan"))
                      for s, r in entry["systems"].items()}
            entry["ranks"] = ranks(values, meta["metric"] == "roc_auc")
            ours, peer = entry["systems"].get("loopml"), entry["systems"].get("lightgbm")
            if ours and peer and ours.get("_outputs") and peer.get("_outputs"):
                entry["loopml_vs_lightgbm"] = worse_beyond_noise(
                    meta, truth, ours["_outputs"], peer["_outputs"], args.seed)
            for r in entry["systems"].values():
                r.pop("_outputs", None)
            table[name] = entry
    mean_rank = {s: round(float(np.mean([t["ranks"][s] for t in table.values()])), 3)
                 for s in systems}
    best = min(mean_rank.values())
    loopml_fit = [t["systems"]["loopml"].get("fit_s") for t in table.values()
                  if "loopml" in t["systems"]]
    limit = args.budget * (1 + TIME_SLACK)
    met = {}
    if "loopml" in systems:
        met = {
            "best_mean_rank": mean_rank["loopml"] == best,
            "fit_within_budget": all(f is not None and f <= limit for f in loopml_fit),
            "never_worse_than_lightgbm_beyond_noise": not any(
                t.get("loopml_vs_lightgbm", {}).get("worse_beyond_noise") for t in table.values()
            ),
        }
    result = {
        "benchmark": "automl",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "budget_s": args.budget,
        "seed": args.seed,
        "threads": THREADS,
        "systems": systems,
        "datasets": table,
        "mean_rank": mean_rank,
        "loopml_max_fit_s": max((f for f in loopml_fit if f is not None), default=None),
        "targets": {"mean_rank": "best of all systems",
                    "fit_s": f"<= budget + {TIME_SLACK:.0%} ({limit:.0f} s)",
                    "vs_lightgbm": "never worse beyond noise (paired bootstrap of the test "
                                   f"rows, {BOOTSTRAP} resamples, 95 % interval)"},
        "met": met,
        "measured": "each system in its own process; fit_s is the fit call alone (the "
                    "system's libraries imported before the clock starts), process_s the "
                    "whole child process (imports, data, prediction)",
        "versions": _versions(systems),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    args.out.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


def markdown(result: dict) -> str:
    systems = result["systems"]
    lines = [
        f"# Model selection at {result['budget_s']} s per system (seed {result['seed']}, "
        f"{result['threads']} threads)",
        "",
        "Metric on the same held-out test rows (ROC AUC: higher is better; log loss and "
        "RMSE: lower is better), rank in brackets, fit wall time in seconds.",
        "",
        "| dataset | metric | " + " | ".join(systems) + " | loopml − LightGBM (95 % CI) |",
        "|---|---|" + "---|" * len(systems) + "---|",
    ]
    for name, t in result["datasets"].items():
        cells = []
        for s in systems:
            r = t["systems"].get(s, {})
            if r.get("metric") is None:
                cells.append("failed")
            else:
                cells.append(f"{r['metric']:.4f} ({t['ranks'][s]:g}) {r['fit_s']:.1f} s")
        vs = t.get("loopml_vs_lightgbm")
        noise = "" if vs is None else (
            f"{vs['worse_by']:+.4f} [{vs['interval'][0]:+.4f}, {vs['interval'][1]:+.4f}]"
            + (" worse" if vs["worse_beyond_noise"] else ""))
        lines.append(f"| {name} | {t['metric']} | " + " | ".join(cells) + f" | {noise} |")
    lines.append("| **mean rank** | | " + " | ".join(
        f"**{result['mean_rank'][s]:g}**" for s in systems) + " | |")
    lines += ["", "Positive loopml − LightGBM means loopml is worse; \"worse\" marks an interval "
              "wholly above zero.", ""]
    for key, ok in result["met"].items():
        lines.append(f"- {key.replace('_', ' ')}: {'met' if ok else 'NOT met'}")
    return "\n".join(lines) + "\n"


def _versions(systems: list[str]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("loopml", "flaml", "lightgbm", "catboost", "scikit-learn"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


if __name__ == "__main__":
    main()
