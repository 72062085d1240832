"""Drift detection at a million rows: loopml's monitor against a peer in the same run.

A generated reference and window of 1,000,000 rows x 20 columns, 9 of them truly shifted
(``drift_data.py``: modest mean, spread, category-mix and missing-rate shifts). Each contender
runs in its own process on the same Parquet files, imports warmed before the clock starts:

- loopml: ``build_reference`` on the reference (what registration does once), then
  ``check_drift`` on the window (every statistic, effect sizes, domain classifier).
- peer: Evidently's ``DataDriftPreset`` with its defaults, run by the Python of an environment
  of its own (``bench/peers/evidently.txt``, created under ``.bench-peers/`` on first use from
  the package index): Evidently cannot share loopml's environment (see ``EVIDENTLY``).
- second peer: scipy's exact tests on the full columns, the statistics Evidently's preset
  computes: Kolmogorov–Smirnov and Wasserstein for numbers, chi-squared and Jensen–Shannon for
  categories, judged by plain p < 0.05 and by Evidently's default thresholds.

Then 1,000,000 rows x 200 columns, loopml alone (target: under 60 s and 4 GB). Records wall
time, peak resident memory of the process, columns found, false alarms and the ratio.
Writes ``bench/results/drift.json``.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/drift.py [--rows 1000000] [--wide 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results" / "drift.json"
EVIDENTLY = (
    "Evidently cannot be installed beside loopml, so it runs in an environment of its own "
    "(bench/peers/evidently.txt): evidently>=0.6 requires plotly<6 (loopml needs plotly>=6); "
    "0.5.0 pins numpy<2.1; and its legacy modules import a pandas 2 internal "
    "(infer_dtype_from_object), so its environment keeps pandas<3."
)


# ---- contenders (each in its own process) ---------------------------------------------------


def run_loopml(folder: Path, count: int) -> dict:
    import lightgbm  # noqa: F401  (warm imports: a monitor process has them loaded)
    import polars as pl
    import scipy.special  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import sklearn.model_selection  # noqa: F401
    from drift_data import kinds

    from loopml.core.config import MonitoringConfig
    from loopml.core.contract import ColumnSpec, Contract
    from loopml.monitor import build_reference, check_drift

    types = kinds(count)
    contract = Contract(source="bench", columns=tuple(ColumnSpec(name=c, type=t)
                                                      for c, t in types.items()))  # fmt: skip
    reference_frame = pl.read_parquet(folder / "reference.parquet")
    start = time.perf_counter()
    reference = build_reference(reference_frame, contract, columns=list(types))
    build_s = time.perf_counter() - start
    del reference_frame  # the window is checked against the stored reference only
    window = pl.read_parquet(folder / "window.parquet")
    start = time.perf_counter()
    report = check_drift(reference, window, model="bench", version=1, config=MonitoringConfig())
    check_s = time.perf_counter() - start
    return {
        "seconds": round(build_s + check_s, 3),
        "build_reference_s": round(build_s, 3),
        "check_drift_s": round(check_s, 3),
        "domain_auc": report.domain_auc,
        "flags": {f.name: f.status for f in report.features},
        "features": {
            f.name: {"status": f.status, "effect": round(f.effect, 5),
                     **{k: round(v, 6) for k, v in f.stats.items()}}
            for f in report.features
        },  # fmt: skip
        "psi_default_flags": [f.name for f in report.features if f.psi >= 0.1],
    }


def run_scipy(folder: Path, count: int) -> dict:
    import numpy as np
    import polars as pl
    from drift_data import kinds
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    types = kinds(count)
    reference = pl.read_parquet(folder / "reference.parquet")
    window = pl.read_parquet(folder / "window.parquet")
    start = time.perf_counter()
    out = {}
    for name, kind in types.items():
        ref, cur = reference[name].drop_nulls(), window[name].drop_nulls()
        if kind != "category":
            a, b = ref.cast(pl.Float64).to_numpy(), cur.cast(pl.Float64).to_numpy()
            p = float(stats.ks_2samp(a, b).pvalue)
            effect = float(stats.wasserstein_distance(a, b) / a.std())
            out[name] = {"p": p, "wasserstein_norm": effect, "evidently_rule": effect >= 0.1}
        else:
            counts = (pl.concat([ref.to_frame().with_columns(side=pl.lit(0)),
                                 cur.to_frame().with_columns(side=pl.lit(1))])
                      .group_by(name, "side").len()
                      .pivot(on="side", index=name, values="len").fill_null(0))  # fmt: skip
            table = np.vstack([counts["0"].to_numpy(), counts["1"].to_numpy()])
            p = float(stats.chi2_contingency(table).pvalue)
            js = float(jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum(), base=2))
            out[name] = {"p": p, "js": js, "evidently_rule": js >= 0.1}
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3),
        "features": out,
        "flags_p_0.05": {n: v["p"] < 0.05 for n, v in out.items()},
        "flags_evidently_rule": {n: v["evidently_rule"] for n, v in out.items()},
    }


def run_evidently(folder: Path, count: int) -> dict:
    """Evidently's default data-drift preset on the same files (its own environment: pandas)."""
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(folder / "reference.parquet")
    window = pd.read_parquet(folder / "window.parquet")
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(window, reference)
    result = snapshot.dict()
    seconds = time.perf_counter() - start
    features = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        value, threshold = float(metric["value"]), float(config["threshold"])
        # distances drift at or above the threshold, p-values below it
        is_p_value = "p_value" in config["method"] or "test" in config["method"].lower()
        drifted = value < threshold if is_p_value else value >= threshold
        features[config["column"]] = {"method": config["method"], "value": value,
                                      "threshold": threshold, "drift": drifted}  # fmt: skip
    return {"seconds": round(seconds, 3), "features": features,
            "flags": {n: f["drift"] for n, f in features.items()}}  # fmt: skip


def evidently_python() -> Path:
    """The peer environment's Python, created from bench/peers/evidently.txt if missing."""
    from _peers import peer_python

    return peer_python("evidently")


def child(which: str, folder: Path, count: int) -> None:
    run = {"loopml": run_loopml, "scipy": run_scipy, "evidently": run_evidently}[which]
    result = run(folder, count)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


def contender(which: str, folder: Path, count: int) -> dict:
    python = evidently_python() if which == "evidently" else Path(sys.executable)
    done = subprocess.run(
        [str(python), __file__, "--child", which, "--data", str(folder), "--wide", str(count)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{which} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the run ---------------------------------------------------------------------------------


def write_pair(folder: Path, rows: int, count: int) -> None:
    from drift_data import make_frame

    folder.mkdir(parents=True, exist_ok=True)
    make_frame(rows, count, window=False).write_parquet(folder / "reference.parquet")
    make_frame(rows, count, window=True).write_parquet(folder / "window.parquet")


def score(flags: dict[str, bool]) -> dict:
    from drift_data import SHIFTED

    found = sorted(n for n in SHIFTED if flags.get(n))
    false = sorted(n for n, f in flags.items() if f and n not in SHIFTED)
    return {"found": len(found), "of": len(SHIFTED), "missed": sorted(set(SHIFTED) - set(found)),
            "false_alarms": len(false), "false_alarm_columns": false}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--wide", type=int, default=200)
    parser.add_argument("--child", choices=["loopml", "scipy", "evidently"])
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.wide)
        return
    with tempfile.TemporaryDirectory() as tmp:
        narrow = Path(tmp) / "narrow"
        write_pair(narrow, args.rows, 20)
        ours = contender("loopml", narrow, 20)
        peer = contender("scipy", narrow, 20)
        evidently = contender("evidently", narrow, 20)
        evidently["score"] = score(evidently["flags"])
        print(f"evidently {evidently['seconds']} s, {evidently['score']}", flush=True)
        ours["score"] = score({n: s != "ok" for n, s in ours["flags"].items()})
        peer["score_p_0.05"] = score(peer["flags_p_0.05"])
        peer["score_evidently_rule"] = score(peer["flags_evidently_rule"])
        print(f"loopml {ours['seconds']} s, {ours['score']}", flush=True)
        print(f"scipy  {peer['seconds']} s, {peer['score_p_0.05']}", flush=True)
        wide = None
        if args.wide > 20:
            import shutil

            shutil.rmtree(narrow)
            folder = Path(tmp) / "wide"
            write_pair(folder, args.rows, args.wide)
            wide = contender("loopml", folder, args.wide)
            wide["score"] = score({n: s != "ok" for n, s in wide["flags"].items()})
            wide.pop("features")
            wide.pop("flags")
            print(f"loopml {args.wide} columns {wide['seconds']} s, {wide['peak_rss_mb']} MB, "
                  f"{wide['score']}", flush=True)  # fmt: skip
    result = {
        "benchmark": "drift",
        "rows": args.rows,
        "columns": 20,
        "shifted": 9,
        "loopml": ours,
        "peer": "Evidently DataDriftPreset (defaults), in its own environment",
        "evidently": {**evidently, "environment": EVIDENTLY},
        "scipy": peer,
        # per window: the reference is built once, at registration; the peer starts from raw rows
        "ratio_per_window": round(evidently["seconds"] / ours["check_drift_s"], 2),
        "ratio_with_reference_build": round(evidently["seconds"] / ours["seconds"], 2),
        "scipy_ratio_per_window": round(peer["seconds"] / ours["check_drift_s"], 2),
        "targets": {"ratio": 20, "found": 9, "false_alarms_at_most": 1,
                    "wide_seconds": 60, "wide_memory_mb": 4096},  # fmt: skip
        "wide": wide and {"columns": args.wide, **wide},
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},  # fmt: skip
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"ratio {result['ratio_per_window']}x per window, "
          f"{result['ratio_with_reference_build']}x with the reference build -> {RESULTS}")


if __name__ == "__main__":
    main()
