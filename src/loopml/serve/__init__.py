"""Serving: a REST service and batch scoring for one model version, with a prediction log.

``create_app`` builds a FastAPI app whose request model is generated from the model's
contract; ``run_server`` serves it with uvicorn (``configure_logs`` sets up its log lines in
a worker process); ``PredictionLog`` batches every served
prediction into the lake table ``predictions/<model>``; ``predict_frame`` scores a whole frame
(``conform`` casts its columns to the contract's types); ``take_feedback`` upserts labels sent
back for logged predictions into ``feedback/<model>``. Rows the log could not write wait in a
dead-letter file (``dead_letter_path``) until ``replay_dead_letter_file`` puts them back
(``dead_letter_file_status`` says what is there).

Example (``bundle`` from ``loopml.core.bundle.load_bundle``)::

    from loopml.lake import Lake
    log = PredictionLog(Lake(".loopml/lake"), "flights")
    app = create_app(bundle, model_name="flights", version=3, log=log)
    run_server(app, host="127.0.0.1", port=8000)
"""

from loopml.serve._app import create_app
from loopml.serve._deadletter import (
    dead_letter_file_status,
    dead_letter_path,
    replay_dead_letter_file,
)
from loopml.serve._feedback import take_feedback
from loopml.serve._log import PredictionLog
from loopml.serve._scoring import conform, predict_frame
from loopml.serve._server import configure_logs, run_server

__all__ = [
    "PredictionLog", "configure_logs", "conform", "create_app", "dead_letter_file_status",
    "dead_letter_path", "predict_frame", "replay_dead_letter_file", "run_server", "take_feedback",
]
