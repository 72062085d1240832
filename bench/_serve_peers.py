"""The serving benchmark's peers, each run as its own server process by ``bench/serve.py``.

- ``fastapi``: a minimal FastAPI app serving the same fitted pipeline: the JSON records made
  into a frame and scored (``predict_frame``), no request validation, no prediction log.
  ``python bench/_serve_peers.py fastapi BUNDLE_DIR PORT``
- ``mlflow-save``: the bundle wrapped as an MLflow pyfunc model (records in a pandas frame,
  scored by the same pipeline), saved for ``mlflow models serve``. Runs in the MLflow peer's
  own environment (``bench/peers/mlflow.txt``), which has loopml installed to unpickle it.
  ``python bench/_serve_peers.py mlflow-save BUNDLE_DIR OUT_DIR``
"""


import sys


def fastapi_app(bundle_dir: str):
    import polars as pl
    from fastapi import FastAPI, Request

    from loopml.core.bundle import load_bundle
    from loopml.serve import predict_frame

    bundle = load_bundle(bundle_dir)
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request):
        records = (await request.json())["records"]
        scored = predict_frame(bundle, pl.DataFrame(records, infer_schema_length=None))
        return {"predictions": scored["_prediction"].to_list(),
                "scores": scored["_score"].to_list()}

    @app.get("/health")
    async def health():
        return {"ok": True}

    return app


def mlflow_save(bundle_dir: str, out: str) -> None:
    import mlflow.pyfunc

    class LoopmlPipeline(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            from loopml.core.bundle import load_bundle

            self.bundle = load_bundle(context.artifacts["bundle"])

        def predict(self, context, model_input, params=None):
            import polars as pl

            from loopml.serve import predict_frame

            scored = predict_frame(self.bundle, pl.from_pandas(model_input))
            return scored["_score"].to_pandas()

    mlflow.pyfunc.save_model(out, python_model=LoopmlPipeline(),
                             artifacts={"bundle": bundle_dir})


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "fastapi":
        import uvicorn

        uvicorn.run(fastapi_app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[3]),
                    log_level="warning", access_log=False)
    elif kind == "mlflow-save":
        mlflow_save(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f"unknown peer {kind!r}")
    sys.exit(0)
