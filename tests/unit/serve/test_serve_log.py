from __future__ import annotations

import time
from datetime import UTC, datetime

import polars as pl
import pytest

from loopml.core.contract import polars_schema
from loopml.core.errors import LakeError, ServeError
from loopml.lake import Lake
from loopml.serve import PredictionLog
from tests.unit.serve.serve_models import CONTRACT, FEATURES, record

TABLE = "predictions/flights"


def _commits(lake: Lake) -> int:
    version = lake.version(TABLE)
    return 0 if version is None else version + 1


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_log_rows_carry_ids_time_features_and_outputs(classifier, client_for, lake):
    """Each scored record becomes one lake row with request id, version, time, typed features,
    prediction and score."""
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60)
    client = client_for(classifier, log=log, version=3)
    before = datetime.now(UTC)
    records = [record(scheduled="2024-02-01T20:00:00+02:00"), record(carrier=None, dep_hour=6)]
    body = client.post("/predict", json={"records": records}).json()
    log.close()
    rows = lake.read(TABLE)
    assert rows.columns == [
        "_request_id",
        "_record",
        "_model_version",
        "_predicted_at",
        *FEATURES,
        "_prediction",
        "_score",
    ]
    assert dict(rows.select(FEATURES).schema) == dict(polars_schema(CONTRACT, FEATURES))
    assert rows.schema["_model_version"] == pl.Int64
    assert rows.schema["_predicted_at"] == pl.Datetime("us", "UTC")
    assert rows["_request_id"].to_list() == [body["request_id"]] * 2
    assert rows["_record"].to_list() == [0, 1]
    assert rows["_model_version"].to_list() == [3, 3]
    assert rows["_predicted_at"].min() >= before
    assert rows["scheduled"][0] == datetime(2024, 2, 1, 18, tzinfo=UTC)
    assert rows["carrier"][1] is None
    assert rows["_prediction"].to_list() == body["predictions"]
    assert rows["_score"].to_list() == pytest.approx([p[0] for p in body["probabilities"]])


def test_many_requests_make_few_commits(classifier, client_for, lake):
    """Requests are logged in batches: 60 requests give a handful of commits and 60 rows."""
    log = PredictionLog(lake, "flights", batch_rows=25, flush_s=60)
    client = client_for(classifier, log=log)
    for hour in range(60):
        client.post("/predict", json={"records": [record(dep_hour=hour % 24)]})
    _wait_for(lambda: log.pending_rows < 25)
    log.close()
    assert lake.read(TABLE).height == 60
    assert 2 <= _commits(lake) <= 5


def test_pending_rows_are_written_after_flush_s(regressor, client_for, lake):
    """A few rows are written once they have waited flush_s seconds, while the app runs."""
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=0.2)
    client = client_for(regressor, log=log)
    client.post("/predict", json={"records": [record(), record()]})
    _wait_for(lambda: lake.exists(TABLE))
    assert lake.read(TABLE).height == 2
    assert client.get("/health").json()["rows_logged"] == 2


def test_app_shutdown_writes_every_pending_row(clusterer, lake):
    """Leaving the TestClient (app shutdown) writes the rows still pending, in one commit."""
    from loopml.serve import create_app
    from tests.unit.serve.conftest import TestClient

    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60)
    with TestClient(create_app(clusterer, model_name="flights", version=1, log=log)) as client:
        for _ in range(30):
            client.post("/predict", json={"records": [record(), record()]})
        health = client.get("/health").json()
        assert (health["rows_pending"], health["rows_logged"]) == (60, 0)
        assert not lake.exists(TABLE)
    assert lake.read(TABLE).height == 60
    assert _commits(lake) == 1
    assert log.pending_rows == 0 and log.written_rows == 60


def test_model_errors_answer_500_and_log_nothing(lake, client_for):
    """A record the model cannot score gets a JSON 500 with the request id and the reason,
    and no log row."""
    import dataclasses

    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    from tests.unit.serve.serve_models import bundle, flights

    data = flights(50)
    model = Pipeline(
        [
            ("features", ColumnTransformer([("num", "passthrough", ["distance"])])),
            ("model", Ridge()),
        ]
    ).fit(data.select(FEATURES), data["arr_delay"].to_numpy())
    no_imputer = dataclasses.replace(bundle("regression"), model=model)
    log = PredictionLog(lake, "flights", batch_rows=1, flush_s=60)
    client = client_for(no_imputer, log=log)
    response = client.post("/predict", json={"records": [record(distance=None)]})
    assert response.status_code == 500
    assert response.json()["request_id"] == response.headers["X-Request-ID"]
    assert "NaN" in response.json()["detail"]
    assert client.post("/predict", json={"records": [record()]}).status_code == 200
    log.close()
    assert lake.read(TABLE).height == 1


def test_failed_write_keeps_rows_for_the_next_flush(tmp_path):
    """When the lake cannot be written the rows stay pending, the error is reported, and the
    next flush writes them all."""
    lake = Lake(tmp_path / "lake")
    blocker = tmp_path / "lake" / "predictions"
    blocker.write_text("not a folder")  # the table's folder cannot be created
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60)
    log.add(pl.DataFrame({"_request_id": ["a", "b"], "_prediction": [1.0, 2.0]}))
    with pytest.raises(LakeError):
        log.flush()
    log.add(pl.DataFrame({"_request_id": ["c"], "_prediction": [3.0]}))
    assert log.pending_rows == 3 and log.written_rows == 0
    assert log.last_error
    blocker.unlink()
    assert log.flush() == 3
    assert lake.read(TABLE)["_request_id"].to_list() == ["a", "b", "c"]
    assert log.last_error is None
    log.close()


def test_health_is_degraded_while_the_lake_fails(classifier, client_for, tmp_path):
    """/health says degraded and shows the error while logged rows cannot be written."""
    lake = Lake(tmp_path / "lake")
    (tmp_path / "lake" / "predictions").write_text("not a folder")
    log = PredictionLog(lake, "flights", batch_rows=1, flush_s=60)
    client = client_for(classifier, log=log)
    client.post("/predict", json={"records": [record()]})
    _wait_for(lambda: log.last_error is not None)
    health = client.get("/health").json()
    assert health["status"] == "degraded" and health["log_error"]
    assert health["rows_pending"] == 1
    (tmp_path / "lake" / "predictions").unlink()
    log.flush()
    assert client.get("/health").json()["status"] == "ok"


def test_close_reports_rows_it_cannot_write(tmp_path):
    """close raises ServeError with the number of rows lost when neither the log table nor
    the dead-letter table can be written."""
    lake = Lake(tmp_path / "lake")
    (tmp_path / "lake" / "predictions").write_text("not a folder")
    (tmp_path / "lake" / "deadletter").write_text("not a folder")
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60)
    log.add(pl.DataFrame({"_request_id": ["a"], "_prediction": [1.0]}))
    with pytest.raises(ServeError, match="1 prediction row"):
        log.close()


def test_log_settings_are_checked(lake):
    """A batch size below 1 or a non-positive flush interval is a ServeError."""
    with pytest.raises(ServeError, match="batch_rows"):
        PredictionLog(lake, "flights", batch_rows=0)
    with pytest.raises(ServeError, match="flush_s"):
        PredictionLog(lake, "flights", flush_s=0)
