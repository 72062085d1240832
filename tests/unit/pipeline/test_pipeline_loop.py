"""One loop cycle end to end on a small real dataset: served predictions, labels back through
/feedback, triggers, a challenger trained on the lake, a decision on the same evidence."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from loopml.lake import Lake
from loopml.pipeline import Project
from tests.conftest import sklearn_frame

pytestmark = pytest.mark.slow

WINDOW = 90


@pytest.fixture
def served(tmp_path: Path) -> Project:
    """Breast cancer: 300 rows trained on, 270 served in three windows, two labelled."""
    frame = sklearn_frame("breast_cancer").sample(fraction=1.0, shuffle=True, seed=3)
    frame = frame.with_columns(pl.col("target").replace_strict({0: "no", 1: "yes"}))
    frame.head(300).write_csv(tmp_path / "cells.csv")
    project = Project.init(tmp_path / "cells.csv", target="target", directory=tmp_path,
                           name="cells", training={"time_budget_s": 3})
    cfg = project.config.model_dump(mode="json")
    cfg["monitoring"].update(window=f"{WINDOW}rows", min_rows=50)
    cfg["loop"].update(triggers=["new_labels"], min_new_labels=100, bootstrap=200)
    project.config.from_dict(cfg).save(project.file)
    project = Project(tmp_path)
    project.run()
    rest = frame.slice(300, 3 * WINDOW)
    features = [c for c in rest.columns if c != "target"]
    with TestClient(project.app()) as client:
        for w in range(3):
            part = rest.slice(w * WINDOW, WINDOW)
            r = client.post("/predict", json={"records": part.select(features).to_dicts()})
            assert r.status_code == 200, r.text
            if w < 2:  # the newest window has no labels yet
                labels = [{"request_id": r.json()["request_id"], "record": i, "label": y}
                          for i, y in enumerate(part["target"].to_list())]
                got = client.post("/feedback", json={"labels": labels})
                assert got.status_code == 200 and got.json()["accepted"] == WINDOW, got.text
    return project


def test_a_cycle_retrains_and_decides_on_the_same_evidence(served: Project) -> None:
    """New labels fire; the challenger is judged on the newest labelled window and its test
    split, the decision is an event with that evidence, and the windows are in the history."""
    with served:
        cycle = served.loop_once()
        assert [t.kind for t in cycle.triggers] == ["new_labels"]
        assert cycle.signals.new_labels == 2 * WINDOW and cycle.challenger_version == 2
        retrain = served.events(kind="retrain", limit=1)[0]["payload"]
        assert retrain["labelled_rows"] == WINDOW  # the first window; the second is evidence
        champion_test_rows = served.load("cells@1")[1].evaluation.rows
        assert retrain["split_sizes"]["test"] == champion_test_rows  # the same held-out split
        lake = Lake(served.root / ".loopml/lake")
        [run] = [r for r in served.catalog.runs(project="cells") if r.kind == "retrain"]
        assert run.lake_versions == {t: lake.version(t) for t in (  # what the rows came from
            "clean/cells", "predictions/cells", "feedback/cells")}
        # the challenger's search began with the champion's configurations
        from loopml.train import warm_specs

        champion_run = served.load("cells@1")[0].run_id
        warm = warm_specs(served.catalog.leaderboard(champion_run))
        tried = sorted((c for c in served.catalog.leaderboard(run.id).candidates
                        if c.origin != "ensemble"), key=lambda c: c.trial)
        assert warm and [(c.learner, c.origin) for c in tried[:len(warm)]] == [
            (w.learner, "champion") for w in warm]
        assert [{k: v for k, v in c.params.items() if k != "n_rounds"}
                for c in tried[:len(warm)]] == [w.params for w in warm]
        d = cycle.decision
        assert d is not None and d.candidate_version == 2 and d.champion_version == 1
        window, test = d.evidence
        assert (window.name, window.comparison.rows) == ("window", WINDOW)
        assert test.name == "test split" and test.comparison.rows == champion_test_rows
        assert window.start is not None and window.start <= window.end
        aliases = {mv.version: mv.aliases for mv in served.models()}
        assert ("champion" in aliases[2]) == d.promote
        event = served.events(kind="decision", limit=1)[0]
        assert event["subject"] == "cells@2" and event["payload"]["reason"] == d.reason
        assert len(event["payload"]["evidence"]) == 2
        history = Lake(served.root / ".loopml/lake").read("monitoring/cells")
        assert history["window_start"].n_unique() == 3
        assert {"realised_roc_auc", "rows"} <= set(history["statistic"].to_list())
        # registration calibrated the champion's scores, so windows carry a label-free estimate
        calibration = served.load("cells@1")[1].reference.calibration
        assert calibration is not None and calibration.target == "positive"
        assert "estimated_roc_auc" in set(history["statistic"].to_list())

        again = served.loop_once()  # no new labels since the challenger: nothing fires
        assert again.triggers == () and again.decision is None
        assert served.models()[-1].version == 2
