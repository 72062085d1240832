"""The server follows its alias: a new version is swapped in under load with no failed or
mixed request, its own contract routes requests, and a shadow model scores off the path."""

from __future__ import annotations

import dataclasses
import threading
import time

import polars as pl

from loopml.serve import PredictionLog
from loopml.serve._served import Follower, Served, ShadowScorer
from tests.unit.serve.serve_models import bundle, flights, record

TABLE = "predictions/flights"


def _two_feature_bundle():
    """A classifier on distance and dep_hour only: a different contract from the full one."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = ("distance", "dep_hour")
    data = flights(200, seed=5)
    model = Pipeline([
        ("features", ColumnTransformer(
            [("num", make_pipeline(SimpleImputer(), StandardScaler()), list(features))])),
        ("model", LogisticRegression()),
    ]).fit(data.select(features), data["late"].to_numpy())  # fmt: skip
    return dataclasses.replace(bundle("classification"), model=model, feature_columns=features)


class Alias:
    """A registry stand-in: the version an alias names, changed by the test."""

    def __init__(self, version, model):
        self.found = (version, model)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.found


def test_swap_under_load_fails_no_request(classifier, client_for, lake):
    """Concurrent clients across a swap: zero errors, each client's versions go old then new,
    and every log row carries the version its response named."""
    alias = Alias(1, classifier)
    log = PredictionLog(lake, "flights", batch_rows=200, flush_s=0.5)
    client = client_for(classifier, version=1, log=log, resolve=alias, follow_s=0.05)
    new = _two_feature_bundle()
    seen: dict[int, list[tuple[int, str]]] = {i: [] for i in range(4)}
    errors: list[str] = []
    stop = threading.Event()

    def hammer(i: int) -> None:
        while not stop.is_set():
            r = client.post("/predict", json={"records": [record(dep_hour=i + 6)] * 3})
            if r.status_code != 200:
                errors.append(r.text)
                continue
            seen[i].append((r.json()["version"], r.json()["request_id"]))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    alias.found = (2, new)  # the promotion
    deadline = time.monotonic() + 20
    while client.get("/health").json()["version"] != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    for answers in seen.values():
        versions = [v for v, _ in answers]
        assert versions == sorted(versions) and versions[-1] == 2
    assert {v for a in seen.values() for v, _ in a} == {1, 2}
    log.close()
    logged = dict(
        lake.read(TABLE).group_by("_request_id").agg(pl.col("_model_version").unique()).rows()
    )
    answered = {rid: v for a in seen.values() for v, rid in a}
    assert logged.keys() == answered.keys()
    assert all(logged[rid] == [v] for rid, v in answered.items())


def test_the_request_model_follows_the_contract(classifier, client_for):
    """After a swap to a model with fewer features, records with only those are accepted;
    /reload reports the change and /openapi.json shows the new contract."""
    alias = Alias(1, classifier)
    client = client_for(classifier, version=1, resolve=alias, follow_s=3600)
    short = {"distance": 800.0, "dep_hour": 9}
    assert client.post("/predict", json={"records": [short]}).status_code == 422
    alias.found = (2, _two_feature_bundle())
    assert client.post("/reload").json()["changed"] is True
    answer = client.post("/predict", json={"records": [short]})
    assert answer.status_code == 200 and answer.json()["version"] == 2
    schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictionRecord"]
    assert list(schema["properties"]) == ["distance", "dep_hour"]


def test_a_failing_resolver_keeps_the_model_and_says_why(classifier, client_for):
    """When the registry cannot answer, the current model keeps serving and /health and
    /reload report the error."""

    def broken():
        raise RuntimeError("catalog unreachable")

    client = client_for(classifier, version=1, resolve=broken, follow_s=3600)
    assert client.post("/reload").status_code == 503
    health = client.get("/health").json()
    assert health["status"] == "degraded" and "catalog unreachable" in health["follow_error"]
    assert client.post("/predict", json={"records": [record()]}).json()["version"] == 1


def test_shadow_rows_are_logged_with_their_version(classifier, lake):
    """A shadow model scores every request off the path; its rows carry _shadow and its own
    version; /health names the shadow; shutting down scores what the shadow queue holds."""
    from fastapi.testclient import TestClient

    from loopml.serve import create_app

    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60)
    app = create_app(classifier, model_name="flights", version=1, log=log,
                     shadow=Alias(9, _two_feature_bundle()))
    with TestClient(app) as client:
        ids = [client.post("/predict", json={"records": [record()] * 2}).json()["request_id"]
               for _ in range(3)]
        assert client.get("/health").json()["shadow"]["version"] == 9
    # the app's shutdown drained the shadow queue, then wrote the log
    rows = lake.read(TABLE)
    shadow = rows.filter(pl.col("_shadow").fill_null(False))
    served = rows.filter(~pl.col("_shadow").fill_null(False))
    assert shadow.height == served.height == 6  # every shadow row scored: none dropped or failed
    assert sorted(set(shadow["_request_id"])) == sorted(set(served["_request_id"])) == sorted(ids)
    assert set(shadow["_model_version"]) == {9} and set(served["_model_version"]) == {1}


def test_a_full_shadow_queue_drops_and_counts(classifier):
    """When the shadow worker falls behind, rows are dropped and counted; submit never waits."""
    current = Served.build(classifier, 1, max_records=10)
    follower = Follower(current, resolve=None, shadow=None, follow_s=1, max_records=10)
    follower.shadow = Served.build(classifier, 2, max_records=10)
    gate = threading.Event()
    real = follower.shadow.scorer.score
    follower.shadow.scorer.score = lambda f: (gate.wait(10), real(f))[1]
    shadows = ShadowScorer(follower, None, size=2)
    features = flights(4).select(current.scorer.columns)
    for _ in range(10):
        shadows.submit(features, None, "r")
    stats = shadows.stats()
    assert stats["rows_dropped"] >= 7 * 4
    gate.set()
    shadows.close()
    stats = shadows.stats()
    assert stats["rows_scored"] + stats["rows_dropped"] == 40 and stats["rows_failed"] == 0
