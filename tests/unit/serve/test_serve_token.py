"""A configured token guards the write endpoints; /predict and /health stay open by default."""

from __future__ import annotations

from tests.unit.serve.serve_models import record

FEEDBACK = {"labels": [{"request_id": "r", "record": 0, "label": "late"}]}


def test_write_endpoints_need_the_token(classifier, client_for, lake):
    """/feedback and /reload answer 401 with a JSON error without the right bearer token,
    and work with it."""
    from loopml.serve import PredictionLog

    client = client_for(classifier, token="s3cret", log=PredictionLog(lake, "flights"))
    for path, body in (("/feedback", FEEDBACK), ("/reload", None)):
        missing = client.post(path, json=body)
        assert missing.status_code == 401
        assert "token" in missing.json()["error"] and "Bearer" in missing.json()["hint"]
        wrong = client.post(path, json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "not the server's token" in wrong.json()["error"]
        right = client.post(path, json=body, headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200


def test_predict_and_health_stay_open(classifier, client_for):
    """Without protect_predict, /predict and /health need no token."""
    client = client_for(classifier, token="s3cret")
    assert client.post("/predict", json={"records": [record()]}).status_code == 200
    assert client.get("/health").status_code == 200


def test_protect_predict_guards_predict_too(classifier, client_for):
    """With protect_predict, /predict needs the token as well; /health stays open."""
    client = client_for(classifier, token="s3cret", protect_predict=True)
    assert client.post("/predict", json={"records": [record()]}).status_code == 401
    ok = client.post("/predict", json={"records": [record()]},
                     headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert client.get("/health").status_code == 200


def test_no_token_means_open_endpoints(classifier, client_for):
    """Without a token /reload works for anyone (nothing to follow: unchanged)."""
    answer = client_for(classifier, version=3).post("/reload").json()
    assert answer == {"version": 3, "changed": False, "shadow_version": None}
