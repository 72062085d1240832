"""The lineage of one prediction: from a request id to the rows it scored, the model version
that scored them, the run that trained it, the lake versions and contract that run read, and
the ingests (source files or cursors) those versions came from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.core.errors import RegistryError

if TYPE_CHECKING:
    from loopml.lake import Lake
    from loopml.registry import Catalog


def request_lineage(lake: Lake, catalog: Catalog, model: str, request_id: str) -> dict[str, Any]:
    """Everything behind the request ``request_id`` to ``model``'s server, as plain data:
    ``predictions`` (each record's features, prediction and score as logged), ``version``,
    ``model`` (the version's record and files), ``run`` (params, metrics, lake versions,
    contract fingerprint, git commit), ``trained_on`` (the clean table's rows it trained on:
    all, or a sample of how many), ``sources`` (the ingests behind the run's lake versions:
    files or cursors, counts, table versions) and ``shadow`` (rows a shadow model logged)."""
    import polars as pl

    from loopml.lake import table_name

    table = table_name("predictions", model)
    rows = pl.DataFrame()
    if lake.exists(table):
        rows = lake.scan(table).filter(pl.col("_request_id") == request_id).collect()
    if rows.height == 0:
        raise RegistryError(
            f"No prediction logged in {table} has the request id {request_id!r}.",
            hint="Check the id (the X-Request-ID header or the answer's request_id) and the "
            "model (--model); a server writes its log every serving.log_flush_s seconds.",
        )
    shadow = rows["_shadow"].fill_null(False) if "_shadow" in rows.columns else None
    served = rows if shadow is None else rows.filter(~shadow)
    shadowed = pl.DataFrame() if shadow is None else rows.filter(shadow)
    version = int(served["_model_version"][0]) if served.height else None
    found = catalog.lineage(model, version) if version is not None else {"model": None,
                                                                          "run": None}
    run = found["run"]
    versions = dict(run["lake_versions"]) if run else {}
    sampled = catalog.events(subject=f"{model}@{version}", kind="trained_on", limit=1) if (
        version is not None) else []
    return {
        "request_id": request_id,
        "model_name": model,
        "version": version,
        "predictions": served.sort("_record").to_dicts() if "_record" in served.columns
        else served.to_dicts(),
        "shadow": shadowed.to_dicts(),
        "model": found["model"],
        "run": run,
        "lake_versions": versions,
        "contract_fingerprint": None if run is None else run["contract_fingerprint"],
        # the clean table's rows the model trained on (all, or a sample), when recorded
        "trained_on": sampled[0]["payload"] if sampled else None,
        "sources": catalog.ingests_behind(versions),
    }
