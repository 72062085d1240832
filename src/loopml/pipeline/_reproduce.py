"""``reproduce``: rebuild a registered model from what its run recorded, and say whether the
rebuilt model predicts the test split exactly as the original does.

The run recorded the lake version of the clean table it read, the contract's fingerprint, the
whole configuration (``run.params``, seed included) and whether the search was deterministic.
The model is retrained by the same ``train_model`` as ``loopml run``: same rows, same split,
same search settings, warmed with the same champion configurations the run tried first; only
the budget's wall clock can differ, which a deterministic run does not read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from loopml.core.errors import RegistryError
from loopml.core.progress import SILENT, Reporter
from loopml.core.records import to_plain
from loopml.lake import table_name

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from loopml.core.config import ProjectConfig
    from loopml.core.contract import Contract
    from loopml.core.records import ModelBundle, Run
    from loopml.pipeline._context import Context


@dataclass(frozen=True, slots=True, kw_only=True)
class Reproduction:
    """Whether a model was rebuilt exactly from its recorded data, contract, config and seed.

    ``identical`` compares the test-split outputs bit for bit: class probabilities for a
    classifier, predictions for a regressor, cluster labels for clustering;
    ``max_abs_difference`` is the largest difference between them (for clustering, the share
    of rows whose cluster differs)."""

    model: str  # NAME@VERSION
    run_id: str
    deterministic: bool
    identical: bool
    max_abs_difference: float
    compared: str  # "probabilities", "predictions" or "cluster labels"
    rows: int  # test rows compared
    metric: str
    original_score: float | None
    reproduced_score: float
    lake_versions: dict[str, int] = field(default_factory=dict)
    contract: str = "project"  # "project" (same fingerprint as the run's) or "bundle"
    seed: int = 0
    seconds: float = 0.0
    summary: str = ""


def reproduce(ctx: Context, ref: str, *, reporter: Reporter = SILENT) -> Reproduction:
    """Retrain the model ``ref`` (``NAME@VERSION`` or ``NAME@ALIAS``) from the lake version,
    contract, config and seed its run recorded, compare its test-split outputs with the
    original's, and log the outcome as a ``reproduce`` event of the model version."""
    from loopml.pipeline._run import clean_sample, train_model
    from loopml.registry import parse_model_ref
    from loopml.train import warmed_with

    started = time.monotonic()
    name, which = parse_model_ref(ref if "@" in ref else f"{ref}@champion")
    mv = ctx.catalog.model_version(name, which)
    original = ctx.load_version(mv)
    run = _run_of(ctx, mv.ref, mv.run_id)
    config = recorded_config(run, ctx.config)
    source = config.problem.source
    clean = table_name("clean", source)
    if run.kind != "train" or clean not in run.lake_versions:
        raise RegistryError(
            f"Run {run.id} of {mv.ref} (a {run.kind} run) recorded no version of the table "
            f"{clean} to train from (it recorded {sorted(run.lake_versions) or 'none'}).",
            hint="Only models trained by 'loopml run' can be reproduced; a challenger that "
            "the loop trained on labelled predictions cannot, yet.",
        )
    contract, contract_from = _contract(ctx, run, original, source)
    rctx = replace(ctx, config=config, contracts={**ctx.contracts, source: contract})
    # the rows the run trained on: the same sample of the same version (the recorded
    # compute.sample_rows and seed)
    frame, sampled = clean_sample(rctx, clean, version=run.lake_versions[clean])
    # the search warmed as the run's was: with the champion configurations it tried first
    board = ctx.catalog.leaderboard(run.id)
    trained = train_model(rctx, frame, run_id=None, reporter=reporter, sampled=sampled,
                          warm=[] if board is None else warmed_with(board))

    test = trained.splits.test
    before, compared = outputs(original, test)
    after, _ = outputs(trained.bundle, test)
    identical, difference = _compare(before, after, compared)
    if trained.bundle.feature_columns != original.feature_columns:
        identical, difference = False, float("inf")
    deterministic = bool(config.training.deterministic)
    result = Reproduction(
        model=mv.ref, run_id=run.id, deterministic=deterministic, identical=identical,
        max_abs_difference=difference, compared=compared, rows=test.height,
        metric=trained.evaluation.metric,
        original_score=None if original.evaluation is None else original.evaluation.score,
        reproduced_score=trained.evaluation.score, lake_versions={clean: run.lake_versions[clean]},
        contract=contract_from, seed=config.training.seed,
        seconds=round(time.monotonic() - started, 3),
        summary=_summary(mv.ref, identical, deterministic, difference, compared, test.height),
    )  # fmt: skip
    ctx.catalog.log_event("reproduce", mv.ref, to_plain(result))
    return result


def recorded_config(run: Run, current: ProjectConfig) -> ProjectConfig:
    """The configuration a run recorded (its params), with the current project's storage
    (where the lake and catalog are now) and serving token (never recorded)."""
    from loopml.core.config import ProjectConfig

    known = {k: v for k, v in run.params.items() if k in ProjectConfig.model_fields}
    config = ProjectConfig.from_dict(known, origin=f"the params of run {run.id}")
    return config.model_copy(update={"storage": current.storage, "serving": current.serving})


def outputs(bundle: ModelBundle, frame: pl.DataFrame) -> tuple[np.ndarray, str]:
    """What the model gives for ``frame``: class probabilities, predictions or clusters."""
    import numpy as np

    rows = frame.select(list(bundle.feature_columns))
    if bundle.task == "classification":
        return np.asarray(bundle.model.predict_proba(rows), dtype=float), "probabilities"
    if bundle.task == "clustering":
        return np.asarray(bundle.model.predict(rows)), "cluster labels"
    return np.asarray(bundle.model.predict(rows), dtype=float), "predictions"


def _run_of(ctx: Context, ref: str, run_id: str | None) -> Run:
    if run_id is None:
        raise RegistryError(
            f"{ref} was registered without a run, so nothing records how it was trained.",
            hint="Reproduce a version that 'loopml run' registered ('loopml models' lists them).",
        )
    return ctx.catalog.get_run(run_id)


def _contract(ctx: Context, run: Run, original: ModelBundle, source: str
              ) -> tuple[Contract, str]:
    """The project's contract when it is the one the run used (same fingerprint), else the
    contract of the model's own features, saved in its bundle."""
    current = ctx.contracts.get(source)
    if current is not None and current.fingerprint() == run.contract_fingerprint:
        return current, "project"
    return original.contract, "bundle"


def _compare(before: np.ndarray, after: np.ndarray, compared: str) -> tuple[bool, float]:
    import numpy as np

    if before.shape != after.shape:
        return False, float("inf")
    if compared == "cluster labels":
        share = float(np.mean(before != after)) if before.size else 0.0
        return share == 0.0, share
    identical = bool(np.array_equal(before, after))
    difference = float(np.max(np.abs(before - after))) if before.size else 0.0
    return identical, difference


def _summary(ref: str, identical: bool, deterministic: bool, difference: float,
             compared: str, rows: int) -> str:
    if identical:
        return f"{ref} was rebuilt exactly: identical {compared} on {rows:,} test rows."
    what = f"{ref} was rebuilt with different {compared} on {rows:,} test rows " \
           f"(largest difference {difference:.3g})"
    if not deterministic:
        return (f"{what}. Its run was not deterministic: the search followed the wall clock, "
                "so it tried a different set of candidates. Train with --deterministic "
                "(training.deterministic: true) for models that can be rebuilt exactly.")
    return (f"{what}, although its run was deterministic: the code, its libraries or the "
            "machine's arithmetic differ from the original run's.")

