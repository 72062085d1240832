"""Operating the server: bounded bodies, records and scoring time; /ready; /metrics in
Prometheus' format; one JSON access line per request with its request id."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time

import polars as pl

from loopml.serve import PredictionLog
from loopml.serve._metrics import JsonFormatter
from tests.unit.serve.serve_models import record


class Slow:
    """A model that takes ``seconds`` to predict and says when it has finished."""

    def __init__(self, model, seconds: float):
        self.model, self.seconds = model, seconds
        self.finished = threading.Event()

    def predict(self, X):
        time.sleep(self.seconds)
        out = self.model.predict(X)
        self.finished.set()
        return out


def test_bodies_over_the_limit_are_refused_with_413(regressor, client_for):
    """A body over max_body_bytes is a 413 that says the limit, whether it declares its
    length or comes in chunks; a body under it is scored."""
    client = client_for(regressor, max_body_bytes=2_000)
    big = json.dumps({"records": [record()] * 20}).encode()
    assert len(big) > 2_000
    declared = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert "2,000 bytes" in declared.json()["error"] and "max_body_mb" in declared.json()["hint"]
    chunked = client.post("/predict", content=iter([big[:1500], big[1500:]]),
                          headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert client.post("/predict", json={"records": [record()]}).status_code == 200


def test_too_many_records_is_a_422_naming_the_limit(regressor, client_for):
    client = client_for(regressor, max_records=3)
    answer = client.post("/predict", json={"records": [record()] * 4})
    assert answer.status_code == 422
    assert "3" in json.dumps(answer.json()["detail"])
    assert client.post("/predict", json={"records": [record()] * 3}).status_code == 200


def test_scoring_over_the_time_limit_is_a_503_and_is_not_logged(regressor, client_for, lake):
    """A request whose scoring overruns timeout_s is answered 503 with its request id at the
    limit, and its predictions never reach the log (every logged prediction was answered)."""
    log = PredictionLog(lake, "flights", flush_s=0.05)
    model = Slow(regressor.model, 3.0)
    client = client_for(dataclasses.replace(regressor, model=model), log=log, timeout_s=0.15)
    model.finished.clear()  # the server's warm-up scored once already
    answer = client.post("/predict", json={"records": [record()]})
    assert answer.status_code == 503 and not model.finished.is_set()  # answered, not waited
    body = answer.json()
    assert body["request_id"] == answer.headers["x-request-id"]
    assert "timeout_s" in body["hint"]
    assert model.finished.wait(30)  # the scoring thread finishes meanwhile, and logs nothing
    time.sleep(0.1)
    log.flush()
    assert log.written_rows == 0 and log.pending_rows == 0
    assert 'loopml_request_timeouts_total 1' in client.get("/metrics").text


def test_metrics_count_requests_latency_rows_and_the_log(classifier, client_for, lake):
    """After two good requests and a bad one, /metrics counts them by status, has a latency
    histogram whose count matches, the rows scored, the model version and the log's state."""
    client = client_for(classifier, log=PredictionLog(lake, "flights"), version=4)
    client.post("/predict", json={"records": [record(), record()]})
    client.post("/predict", json={"records": [record()]})
    client.post("/predict", json={"records": [{"distance": "far"}]})
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    lines = dict(line.rsplit(" ", 1) for line in answer.text.splitlines()
                 if line and not line.startswith("#"))
    assert lines['loopml_requests_total{endpoint="/predict",status="200"}'] == "2"
    assert lines['loopml_requests_total{endpoint="/predict",status="422"}'] == "1"
    assert lines['loopml_request_seconds_count{endpoint="/predict"}'] == "3"
    assert lines['loopml_request_seconds_bucket{endpoint="/predict",le="+Inf"}'] == "3"
    assert lines["loopml_rows_scored_total"] == "3"
    assert lines['loopml_model_version{model="flights"}'] == "4"
    assert lines["loopml_log_pending_rows"] in ("0", "3")
    assert lines["loopml_log_writable"] == "1"
    assert "# TYPE loopml_request_seconds histogram" in answer.text


def test_ready_is_503_while_the_log_cannot_write(regressor, client_for, lake, tmp_path):
    """/ready is 200 with a model and a working log; when the lake refuses the log's writes
    it is 503 with the reason, while /predict keeps answering."""
    log = PredictionLog(lake, "flights", flush_s=60)
    client = client_for(regressor, log=log)
    assert client.get("/ready").json() == {"ready": True, "model": "flights", "version": 1,
                                           "reasons": []}
    table = lake.path("predictions/flights")
    (tmp_path / "lake" / "predictions").mkdir(parents=True, exist_ok=True)
    with open(table, "w") as fh:  # a file where the table's folder must go
        fh.write("not a folder")
    assert client.post("/predict", json={"records": [record()]}).status_code == 200
    try:
        log.flush()
    except Exception:  # noqa: BLE001 - the failure is what /ready must report
        pass
    answer = client.get("/ready")
    assert answer.status_code == 503 and not answer.json()["ready"]
    assert "prediction log" in answer.json()["reasons"][0]
    assert client.post("/predict", json={"records": [record()]}).status_code == 200


def test_each_request_has_one_json_access_line_with_its_request_id(regressor, client_for,
                                                                   caplog):
    client = client_for(regressor)
    with caplog.at_level(logging.INFO, logger="loopml.serve.access"):
        answer = client.post("/predict", json={"records": [record()]})
        client.get("/health")
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records
             if r.name == "loopml.serve.access"]
    assert [(x["path"], x["status"]) for x in lines] == [("/predict", 200), ("/health", 200)]
    assert lines[0]["request_id"] == answer.json()["request_id"] == answer.headers["x-request-id"]
    assert lines[1]["request_id"] and lines[0]["ms"] > 0 and lines[0]["level"] == "info"
    assert pl.Series([x["time"] for x in lines]).str.ends_with("Z").all()


def test_logged_records_are_validated_against_the_contract(classifier, client_for, lake):
    """The server scores a distance above the contract's bound and a carrier it does not list
    (a warning in the answer); the prediction log validates what it writes with the ingest's
    code and /metrics counts the rules broken, by column, rule and severity."""
    from loopml.pipeline._operate import contract_check

    log = PredictionLog(lake, "flights", flush_s=60, check=contract_check(classifier))
    client = client_for(classifier, log=log)
    answer = client.post("/predict", json={"records": [
        record(), record(distance=20000.0), record(carrier="ZZ"), record(distance=15000.5)]})
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 4
    assert log.flush() == 4 and lake.read("predictions/flights").height == 4
    assert log.contract_violations == {("distance", "max", "error"): 2,
                                       ("carrier", "allowed", "error"): 1}
    text = client.get("/metrics").text
    assert ('loopml_contract_violations_total{column="distance",rule="max",severity="error"} 2'
            in text.splitlines())
    assert "# TYPE loopml_contract_violations_total counter" in text


def test_a_failing_check_costs_no_logged_row(classifier, lake):
    """Validation runs off the request path and never stops a write."""

    def broken(frame):
        raise RuntimeError("boom")

    log = PredictionLog(lake, "flights", flush_s=60, check=broken)
    log.add(pl.DataFrame({"_request_id": ["a"], "_prediction": [1.5]}))
    assert log.flush() == 1 and log.contract_violations == {}
    log.close()
