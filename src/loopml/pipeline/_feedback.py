"""Ground truth back and the server's model: labels from files, the catalog events they leave,
and the resolvers that let a server follow its model alias and a shadow alias."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.config import FileSource
from loopml.core.errors import FeedbackError, IntegrityError, RegistryError

if TYPE_CHECKING:
    from collections.abc import Callable

    from loopml.core.records import FeedbackResult, ModelBundle
    from loopml.pipeline._context import Context
    from loopml.registry import Catalog

KEY_COLUMNS = ("request_id", "record", "id", "label")


def feedback_file(ctx: Context, data: Path, *, model: str | None) -> FeedbackResult:
    """Upsert the labels in a CSV, Parquet or NDJSON file into ``feedback/<model>``.

    The file has ``label`` and either ``request_id`` and ``record``, or the id column
    (``problem.id_column``, or a column named ``id``). The counts are a catalog event.
    """
    from loopml.serve import take_feedback
    from loopml.sources import read_source

    mv, bundle = ctx.load(model)
    data = data if data.is_absolute() else Path.cwd() / data
    frame = read_source(FileSource(name="feedback", path=str(data)), base_dir=data.parent).frame
    id_column = ctx.config.problem.id_column
    if id_column is not None and id_column in frame.columns and "id" not in frame.columns:
        frame = frame.rename({id_column: "id"})
    labels = frame.select([c for c in KEY_COLUMNS if c in frame.columns])
    if "label" not in labels.columns:
        raise FeedbackError(
            f"{data.name} has no 'label' column (columns: {', '.join(frame.columns[:20])}).",
            hint="Name the ground-truth column 'label'.",
        )
    result = take_feedback(
        ctx.lake, mv.name, labels, task=bundle.task, classes=bundle.classes,
        id_column=id_column,
    )
    record_feedback(ctx.catalog, mv.name, result, via="file", source=str(data))
    return result


def record_feedback(
    catalog: Catalog, model_name: str, result: FeedbackResult, *, via: str, source: str | None
) -> None:
    """The catalog event ``feedback`` with the counts of one batch of labels."""
    catalog.log_event(
        "feedback", model_name,
        {"via": via, "source": source, "accepted": result.accepted, "unknown": result.unknown,
         "invalid": result.invalid, "table": result.table},
    )  # fmt: skip


def alias_resolver(
    catalog: Catalog,
    name: str,
    alias: str,
    *,
    missing_ok: bool = False,
    current: tuple[int, ModelBundle] | None = None,
) -> Callable[[], tuple[int, ModelBundle] | None]:
    """``resolve()`` for a server: the version ``name@alias`` names now and its bundle, loaded
    from a folder whose sha256 sums were checked. A bundle is loaded only when the version
    changes (``current`` is the version already loaded). With ``missing_ok``, an alias that
    names no version gives None."""
    from loopml.pipeline._context import serving_bundle

    lock = threading.Lock()
    cache: dict[str, Any] = {} if current is None else {"version": current[0], "bundle": current[1]}

    def resolve() -> tuple[int, ModelBundle] | None:
        with lock:
            try:
                mv = catalog.model_version(name, alias)
            except IntegrityError:
                raise
            except RegistryError:
                if missing_ok:
                    return None
                raise
            if cache.get("version") != mv.version:
                folder = catalog.fetch(mv.name, mv.version)  # sha256 of every file checked
                cache["bundle"] = serving_bundle(folder)
                cache["version"] = mv.version
            return cache["version"], cache["bundle"]

    return resolve


def serving_options(
    ctx: Context, name: str, model: str | None, *, current: tuple[int, ModelBundle]
) -> dict[str, Any]:
    """``create_app``'s keyword arguments from ``serving:`` and ``problem:``: following the
    alias served (not a fixed version), the shadow alias, the token, the limits, the id
    column, the catalog event for each batch of labels sent to ``/feedback`` and the lineage
    of a request for ``/lineage``."""
    from loopml.registry import parse_model_ref

    serving = ctx.config.serving
    _, which = parse_model_ref(model or serving.model or f"{ctx.model_name}@champion")
    catalog = ctx.catalog

    def on_feedback(result: FeedbackResult) -> None:
        record_feedback(catalog, name, result, via="http", source=None)

    def lineage(request_id: str) -> dict[str, Any]:
        from loopml.pipeline._lineage import request_lineage

        return request_lineage(ctx.lake, catalog, name, request_id)

    return {
        "lineage": lineage,
        "resolve": alias_resolver(catalog, name, which, current=current)
        if isinstance(which, str)
        else None,
        "follow_s": serving.follow_s,
        "shadow": None if serving.shadow is None
        else alias_resolver(catalog, name, serving.shadow, missing_ok=True),
        "token": serving.token,
        "protect_predict": serving.protect_predict,
        "max_records": serving.max_records,
        "max_body_bytes": int(serving.max_body_mb * 1_000_000),
        "timeout_s": serving.timeout_s,
        "id_column": ctx.config.problem.id_column,
        "on_feedback": on_feedback,
    }
