"""Writing and reading a model bundle: the folder a registered model version consists of.

``model.joblib`` holds the fitted scikit-learn Pipeline; every other file is plain JSON or YAML
so a person can read what the model expects and how it was judged. The registry checks each
file's sha256 before this module is asked to load it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from loopml.core.contract import Contract
from loopml.core.errors import IntegrityError
from loopml.core.records import (
    Calibration,
    ClusterProfile,
    ClusterTrait,
    Evaluation,
    FeatureReference,
    ModelBundle,
    Reference,
    TableSample,
)

MODEL_FILE = "model.joblib"
META_FILE = "bundle.json"
CONTRACT_FILE = "contract.yaml"
REFERENCE_FILE = "reference.json"
SAMPLE_FILE = "reference_sample.parquet"  # bounded sample of reference rows, for drift
EVALUATION_FILE = "evaluation.json"
SERVING_FILE = "serving.json"  # which form serves and why (see loopml.train.serving_form)
COMPILED_DIR = "compiled"  # the compiled form, when it passed the parity check


def save_bundle(bundle: ModelBundle, folder: str | Path) -> Path:
    """Write ``bundle`` into ``folder`` (created) and return the folder."""
    import joblib

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(bundle.model, folder / MODEL_FILE, compress=3)
    bundle.contract.save(folder / CONTRACT_FILE)
    meta = {
        "task": bundle.task,
        "target": bundle.target,
        "feature_columns": list(bundle.feature_columns),
        "classes": None if bundle.classes is None else [to_native(c) for c in bundle.classes],
        "positive_label": to_native(bundle.positive_label),
    }
    if bundle.cleaning is not None:
        meta["cleaning"] = bundle.cleaning
    if bundle.trained_on is not None:
        meta["trained_on"] = asdict(bundle.trained_on)
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))
    reference = asdict(replace(bundle.reference, sample=None))
    reference.pop("sample")
    (folder / REFERENCE_FILE).write_text(json.dumps(reference, indent=1))
    if bundle.reference.sample is not None:
        bundle.reference.sample.write_parquet(folder / SAMPLE_FILE)
    if bundle.evaluation is not None:
        (folder / EVALUATION_FILE).write_text(json.dumps(asdict(bundle.evaluation), indent=1))
    return folder


def load_bundle(folder: str | Path, *, model: Any = None) -> ModelBundle:
    """Read a bundle written by ``save_bundle``. Only call it on a verified folder.

    ``model`` (e.g. the compiled form, see ``serving_record``) is used instead of unpickling
    ``model.joblib``; the bundle then says it serves the compiled form.
    """
    import joblib

    folder = Path(folder)
    missing = [
        f for f in (MODEL_FILE, META_FILE, CONTRACT_FILE, REFERENCE_FILE) if not (folder / f).exists()
    ]
    if missing:
        raise IntegrityError(
            f"The model bundle in {folder} lacks {', '.join(missing)}.",
            hint="Register the model again with 'loopml run'.",
        )
    meta = json.loads((folder / META_FILE).read_text())
    evaluation = None
    if (folder / EVALUATION_FILE).exists():
        evaluation = evaluation_from_dict(json.loads((folder / EVALUATION_FILE).read_text()))
    classes = meta["classes"]
    record = serving_record(folder)
    return ModelBundle(
        model=joblib.load(folder / MODEL_FILE) if model is None else model,
        contract=Contract.load(folder / CONTRACT_FILE),
        task=meta["task"],
        target=meta["target"],
        feature_columns=tuple(meta["feature_columns"]),
        classes=None if classes is None else tuple(classes),
        positive_label=meta["positive_label"],
        reference=_reference(folder),
        evaluation=evaluation,
        serving_form="pickle" if model is None else "compiled",
        serving_reason=_why(record, compiled=model is not None),
        cleaning=meta.get("cleaning"),
        trained_on=table_sample(meta.get("trained_on")),
    )


def serving_record(folder: str | Path) -> dict[str, Any] | None:
    """What registration decided about the serving form (``serving.json``), or None for a
    bundle registered before compiled forms."""
    path = Path(folder) / SERVING_FILE
    return json.loads(path.read_text()) if path.exists() else None


def _why(record: dict[str, Any] | None, *, compiled: bool) -> str:
    if record is None:
        return "registered before compiled forms"
    if compiled or record.get("form") != "compiled":
        return str(record.get("reason"))
    return "the compiled form was not asked for"


def _reference(folder: Path) -> Reference:
    reference = reference_from_dict(json.loads((folder / REFERENCE_FILE).read_text()))
    if (folder / SAMPLE_FILE).exists():
        import polars as pl

        reference = replace(reference, sample=pl.read_parquet(folder / SAMPLE_FILE))
    return reference


def reference_from_dict(raw: dict[str, Any]) -> Reference:
    """A ``Reference`` from its JSON form; bundles written before the finer statistics load
    with their defaults (PSI only)."""

    def feature(f: dict[str, Any]) -> FeatureReference:
        return FeatureReference(
            name=f["name"],
            kind=f["kind"],
            edges=tuple(f["edges"]),
            categories=tuple(f["categories"]),
            shares=tuple(f["shares"]),
            rows=f["rows"],
            fine_edges=tuple(f.get("fine_edges", ())),
            fine_shares=tuple(f.get("fine_shares", ())),
            fine_means=tuple(f.get("fine_means", ())),
            mean=f.get("mean"),
            std=f.get("std"),
            known=tuple(f.get("known", ())),
        )

    pred = raw.get("prediction")
    cal = raw.get("calibration")
    return Reference(
        features=tuple(feature(f) for f in raw["features"]),
        prediction=None if pred is None else feature(pred),
        rows=raw.get("rows", 0),
        sampled=table_sample(raw.get("sampled")),
        calibration=None if cal is None else Calibration(
            target=cal["target"], scores=tuple(cal["scores"]),
            probabilities=tuple(cal["probabilities"]), rows=cal.get("rows", 0),
        ),  # fmt: skip
    )


def evaluation_from_dict(raw: dict[str, Any]) -> Evaluation:
    def tup(value: Any) -> Any:
        if isinstance(value, list):
            return tuple(tup(v) for v in value)
        return value

    raw = {k: (tup(v) if isinstance(v, list) else v) for k, v in raw.items()}
    raw["sampled"] = table_sample(raw.get("sampled"))
    raw["cluster_profiles"] = tuple(
        ClusterProfile(**{**p, "traits": tuple(ClusterTrait(**t) for t in p["traits"])})
        for p in raw.get("cluster_profiles", ())
    )
    return Evaluation(**raw)


def table_sample(raw: dict[str, Any] | None) -> TableSample | None:
    """A ``TableSample`` from its JSON form (None for bundles written before samples)."""
    return None if raw is None else TableSample(**raw)


def to_native(value: Any) -> Any:
    """numpy scalars to Python scalars, NaN to None, so JSON and Polars take them as they are.

    >>> import numpy as np
    >>> to_native(np.int64(3)), to_native(float("nan"))
    (3, None)
    """
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
