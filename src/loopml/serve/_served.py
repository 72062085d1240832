"""The model a server scores with, how it follows an alias, and shadow scoring.

A ``Served`` model is immutable: scorer, request schema, version. The server holds one
reference to the current one; a new version is loaded and warmed up on a background thread
and then swapped in by one reference assignment, so a request that read the reference scores,
validates and logs with one model from start to end, and no request waits for a load.

Shadow scoring runs a second model (e.g. the ``challenger`` alias) on every request's rows off
the response path: requests hand their rows to a bounded queue that one worker thread drains;
when the queue is full the rows are dropped and counted, never waited for.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.core.errors import first_line
from loopml.serve._request import RequestSchema
from loopml.serve._scoring import Scorer, conform

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.records import ModelBundle
    from loopml.serve._log import PredictionLog

logger = logging.getLogger("loopml.serve")

Resolve = Callable[[], "tuple[int, ModelBundle] | None"]
SHADOW_QUEUE = 256  # requests waiting for the shadow model at most
SMALL_FRAME = 32  # up to this many rows, unseen categories are found in Python


@dataclass(frozen=True, slots=True, eq=False)
class Served:
    """One model version ready to answer: never changed after it is built."""

    version: int
    scorer: Scorer
    schema: RequestSchema
    classes: list[Any] | None
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)  # allowed, as text
    form: str = "pickle"  # the model's form: "compiled" or "pickle" (see ModelBundle)
    reason: str | None = None  # why that form serves
    _sets: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)  # a cache

    @classmethod
    def build(cls, bundle: ModelBundle, version: int, *, max_records: int) -> Served:
        """Prepare ``bundle`` for scoring and score the contract's example once."""
        scorer = Scorer(bundle)
        schema = RequestSchema(scorer.contract, max_records=max_records)
        categories = {
            c.name: tuple(dict.fromkeys(str(a) for a in c.allowed))
            for c in scorer.contract.columns
            if c.type == "category" and c.allowed
        }
        served = cls(
            version=version,
            scorer=scorer,
            schema=schema,
            classes=None if scorer.classes is None else list(scorer.classes),
            categories=categories,
            form=bundle.serving_form,
            reason=bundle.serving_reason,
        )
        served.warm_up()
        return served

    def warm_up(self) -> None:
        """Score the contract's example row once so the first request pays no one-off costs."""
        try:
            body = self.schema.request.model_validate({"records": [self.schema.example]})
            self.scorer.score(self.schema.frame(body.records))  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - a model may reject made-up values
            logger.warning("Warm-up prediction failed (%s: %s)", type(exc).__name__, exc)

    def unseen(self, features: pl.DataFrame) -> list[dict[str, Any]]:
        """A warning per value of a category column that the contract does not list."""
        import polars as pl

        out = []
        for name, allowed in self.categories.items():
            column = features[name]
            if column.dtype == pl.String and column.len() <= SMALL_FRAME:  # no expressions
                known = self._known(name)
                found = [i for i, v in enumerate(column.to_list())
                         if v is not None and v not in known]
            else:
                bad = column.is_not_null() & ~column.cast(pl.String).is_in(allowed)
                found = bad.arg_true().to_list() if bad.any() else []
            for i in found:
                value = column[i]
                out.append({
                    "record": i, "field": name, "value": value,
                    "message": f"{value!r} is not a category the model was trained on; it was "
                               "scored as an unseen category.",
                })  # fmt: skip
        out.sort(key=lambda w: (w["record"], w["field"]))
        return out


    def _known(self, name: str) -> frozenset[str]:
        """The allowed categories of ``name`` as a set, made once."""
        known = self._sets.get(name)
        if known is None:
            known = self._sets[name] = frozenset(self.categories[name])
        return known


class Follower:
    """Keeps the served model (and the shadow model) in step with what ``resolve`` names.

    ``resolve`` returns ``(version, bundle)`` for the alias served (or None when the alias
    points nowhere); it is called every ``follow_s`` seconds on a background thread and on
    ``check``. A different version is built off the request path and swapped in at once.
    """

    def __init__(
        self,
        current: Served,
        *,
        resolve: Resolve | None,
        shadow: Resolve | None,
        follow_s: float,
        max_records: int,
    ):
        self.current = current  # read by requests without a lock: one atomic reference
        self.shadow: Served | None = None
        self.resolve = resolve
        self.resolve_shadow = shadow
        self.follow_s = follow_s
        self.max_records = max_records
        self.last_error: str | None = None
        self.swaps = 0
        self._checking = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if (self.resolve is None and self.resolve_shadow is None) or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="loopml-follow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def check(self) -> bool:
        """Ask ``resolve`` once; load and swap in a new version. True if anything changed."""
        with self._checking:
            changed = False
            try:
                if self.resolve is not None:
                    changed |= self._follow_current()
                if self.resolve_shadow is not None:
                    changed |= self._follow_shadow()
            except Exception as exc:  # noqa: BLE001 - keep serving the model we have
                self.last_error = f"{type(exc).__name__}: {first_line(exc)}"
                logger.error("Could not follow the model alias: %s", self.last_error)
                return changed
            self.last_error = None
            return changed

    def _follow_current(self) -> bool:
        assert self.resolve is not None
        found = self.resolve()
        if found is None or found[0] == self.current.version:
            return False
        version, bundle = found
        new = Served.build(bundle, version, max_records=self.max_records)
        old, self.current = self.current, new  # the swap: one reference assignment
        self.swaps += 1
        logger.info("Now serving version %d (was %d).", version, old.version)
        return True

    def _follow_shadow(self) -> bool:
        assert self.resolve_shadow is not None
        found = self.resolve_shadow()
        if found is None:
            changed, self.shadow = self.shadow is not None, None
            return changed
        if self.shadow is not None and found[0] == self.shadow.version:
            return False
        version, bundle = found
        self.shadow = Served.build(bundle, version, max_records=self.max_records)
        logger.info("Shadow scoring with version %d.", version)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.follow_s):
            self.check()


class ShadowScorer:
    """Scores requests' rows with the follower's shadow model on one worker thread and logs
    them with ``_shadow=True``; a full queue drops rows (counted) instead of waiting."""

    def __init__(self, follower: Follower, log: PredictionLog | None, *, size: int = SHADOW_QUEUE):
        self.follower = follower
        self.log = log
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._lock = threading.Lock()
        self.scored_rows = 0
        self.dropped_rows = 0
        self.failed_rows = 0
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None

    def submit(self, features: pl.DataFrame, ids: list[Any] | None, request_id: str) -> None:
        """Queue a request's rows for the shadow model; returns at once."""
        if self.follower.shadow is None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="loopml-shadow", daemon=True
                )
                self._thread.start()
        try:
            self._queue.put_nowait((features, ids, request_id))
        except queue.Full:
            with self._lock:
                self.dropped_rows += features.height

    def close(self) -> None:
        """Score what is queued, then stop the worker."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def stats(self) -> dict[str, Any]:
        shadow = self.follower.shadow
        with self._lock:
            return {
                "version": None if shadow is None else shadow.version,
                "rows_scored": self.scored_rows,
                "rows_dropped": self.dropped_rows,
                "rows_failed": self.failed_rows,
                "error": self.last_error,
            }

    def _run(self) -> None:
        from loopml.serve._log import PredictionLog

        while True:
            item = self._queue.get()
            if item is None:
                return
            features, ids, request_id = item
            shadow = self.follower.shadow
            if shadow is None:
                continue
            try:
                rows = conform(features, shadow.scorer.contract).select(shadow.scorer.columns)
                scored = shadow.scorer.score(rows)
                if self.log is not None:
                    self.log.add(PredictionLog.rows(
                        rows, shadow.scorer.columns_for(scored), request_id=request_id,
                        version=shadow.version, ids=ids, shadow=True,
                    ))  # fmt: skip
                with self._lock:
                    self.scored_rows += features.height
            except Exception as exc:  # noqa: BLE001 - the shadow never affects serving
                with self._lock:
                    self.failed_rows += features.height
                    self.last_error = f"{type(exc).__name__}: {first_line(exc)}"
