"""The prediction log: served rows batched into the lake table ``predictions/<model>``.

A request only appends its rows to an in-memory list; a background thread writes them as one
Delta commit when ``batch_rows`` rows are pending or the oldest has waited ``flush_s`` seconds.
A failed write keeps the rows and is retried with a growing pause; ``close`` writes whatever is
left, and runs at interpreter exit too, so stopping the server loses nothing.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loopml.core.errors import LakeError, ServeError
from loopml.lake import table_name

if TYPE_CHECKING:
    import polars as pl

    from loopml.lake import Lake

logger = logging.getLogger("loopml.serve")

CLOSE_ATTEMPTS = 3
MAX_RETRY_PAUSE_S = 60.0


class PredictionLog:
    """Batches prediction rows into the lake table ``predictions/<model_name>``.

    ``add`` never waits for the lake; ``flush`` writes what is pending now (one commit);
    ``close`` stops the background thread and writes everything.

    >>> import tempfile, polars as pl
    >>> from loopml.lake import Lake
    >>> lake = Lake(tempfile.mkdtemp())
    >>> log = PredictionLog(lake, "flights", batch_rows=100, flush_s=60)
    >>> log.add(pl.DataFrame({"_request_id": ["a"], "_prediction": [1.5]}))
    >>> log.pending_rows
    1
    >>> log.close()
    >>> lake.read("predictions/flights").height
    1
    """

    def __init__(
        self, lake: Lake, model_name: str, *, batch_rows: int = 1000, flush_s: float = 2.0
    ):
        if batch_rows < 1 or not flush_s > 0:
            raise ServeError(
                f"The prediction log needs batch_rows >= 1 and flush_s > 0; got {batch_rows} "
                f"and {flush_s}.",
                hint="Set serving.log_batch_rows and serving.log_flush_s in loopml.yaml.",
            )
        self.lake = lake
        self.model_name = model_name
        self.table = table_name("predictions", model_name)
        self.batch_rows = batch_rows
        self.flush_s = float(flush_s)
        self._wake = threading.Condition(threading.Lock())  # guards every field below
        self._writing = threading.Lock()  # one lake write at a time, in arrival order
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0
        self._oldest: float | None = None  # monotonic time the oldest pending row arrived
        self._written_rows = 0
        self._commits = 0
        self._failures = 0  # consecutive failed writes
        self._retry_at = 0.0
        self._last_error: str | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._exit_hook: Any = None

    def __repr__(self) -> str:
        return (
            f"PredictionLog({self.table!r}, written={self.written_rows}, "
            f"pending={self.pending_rows})"
        )

    # ---- state --------------------------------------------------------------------------

    @property
    def pending_rows(self) -> int:
        """Rows received but not yet committed to the lake."""
        with self._wake:
            return self._pending_rows

    @property
    def written_rows(self) -> int:
        """Rows committed to the lake by this log."""
        with self._wake:
            return self._written_rows

    @property
    def commits(self) -> int:
        """Lake commits made by this log."""
        with self._wake:
            return self._commits

    @property
    def last_error(self) -> str | None:
        """Why the latest write failed, or None once a write succeeds again."""
        with self._wake:
            return self._last_error

    # ---- writing ------------------------------------------------------------------------

    def add(self, frame: pl.DataFrame) -> None:
        """Queue ``frame``'s rows for the lake. Returns at once; the write happens later."""
        if frame.height == 0:
            return
        with self._wake:
            self._pending.append(frame)
            self._pending_rows += frame.height
            if self._oldest is None:
                self._oldest = time.monotonic()
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False  # a log used again after close starts a new writer
                self._start()
            self._wake.notify()

    @staticmethod
    def rows(
        features: pl.DataFrame,
        outputs: Sequence[pl.Series],
        *,
        request_id: str,
        version: int,
        records: pl.Series | None = None,
    ) -> pl.DataFrame:
        """The log rows of one request or scored file: ``_request_id``, ``_record`` (the
        row's position, or ``records``), ``_model_version``, ``_predicted_at``, the features
        and the outputs (``_prediction``, ``_score``)."""
        from datetime import UTC, datetime

        import polars as pl

        now = datetime.now(UTC)
        positions = range(features.height) if records is None else records.to_list()
        ids = [
            {"_request_id": request_id, "_record": i, "_model_version": version,
             "_predicted_at": now}
            for i in positions
        ]  # fmt: skip
        return pl.from_dicts(ids, schema=_log_id_schema()).hstack(
            [*features.get_columns(), *outputs]
        )

    def flush(self) -> int:
        """Write every pending row now as one commit and return how many were written.

        On failure the rows stay pending (the background thread retries them) and
        ``LakeError`` is raised.
        """
        import polars as pl

        with self._writing:
            with self._wake:
                batch, rows = self._pending, self._pending_rows
                oldest = self._oldest
                self._pending, self._pending_rows, self._oldest = [], 0, None
            if not batch:
                return 0
            try:
                frame = pl.concat(batch, how="diagonal_relaxed")
                self.lake.append(
                    self.table,
                    frame,
                    metadata={"loopml.stage": "serve", "loopml.rows": str(rows)},
                )
            except Exception as exc:
                self._keep(batch, rows, oldest, exc)
                if isinstance(exc, LakeError):
                    raise
                raise LakeError(
                    f"Writing {rows} prediction row(s) to {self.table} failed: {exc}"
                ) from exc
            with self._wake:
                self._written_rows += rows
                self._commits += 1
                self._failures = 0
                self._retry_at = 0.0
                self._last_error = None
            return rows

    def close(self) -> None:
        """Stop the background thread and write every pending row.

        Tries a few times; if rows still cannot be written, logs and raises ``ServeError``
        saying how many rows are lost, rather than dropping them silently.
        """
        with self._wake:
            self._stopping = True
            thread = self._thread
            self._wake.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._unhook()
        for attempt in range(1, CLOSE_ATTEMPTS + 1):
            try:
                self.flush()
                return
            except LakeError as exc:
                if attempt == CLOSE_ATTEMPTS:
                    lost = self.pending_rows
                    logger.error(
                        "Giving up on %d prediction row(s) for %s: %s", lost, self.table, exc
                    )
                    raise ServeError(
                        f"{lost} prediction row(s) could not be written to {self.table} "
                        f"after {CLOSE_ATTEMPTS} attempts: {exc}",
                        hint="Check that the lake is reachable and writable.",
                    ) from exc
                time.sleep(0.25 * attempt)

    # ---- background thread --------------------------------------------------------------

    def _start(self) -> None:
        """Start the writer thread and the exit hook (caller holds the lock)."""
        self._thread = threading.Thread(
            target=self._run, name=f"loopml-log-{self.model_name}", daemon=True
        )
        self._thread.start()
        if self._exit_hook is None:
            ref = weakref.ref(self)

            def at_exit() -> None:
                log = ref()
                if log is not None and log.pending_rows:
                    try:
                        log.close()
                    except ServeError:
                        pass  # already logged with the number of rows lost

            self._exit_hook = at_exit
            atexit.register(at_exit)

    def _unhook(self) -> None:
        with self._wake:
            hook, self._exit_hook = self._exit_hook, None
        if hook is not None:
            atexit.unregister(hook)

    def _run(self) -> None:
        while True:
            with self._wake:
                while True:
                    if self._stopping:
                        return
                    wait = self._seconds_to_flush(time.monotonic())
                    if wait is not None and wait <= 0:
                        break
                    self._wake.wait(wait)
            try:
                self.flush()
            except LakeError:
                pass  # logged by _keep; the rows wait for the next attempt
            except Exception:  # never let the writer die: the rows would wait forever
                logger.exception("Unexpected error in the prediction log writer")

    def _seconds_to_flush(self, now: float) -> float | None:
        """Seconds until the next write is due; None while nothing is pending."""
        if self._oldest is None:
            return None
        due = now if self._pending_rows >= self.batch_rows else self._oldest + self.flush_s
        return max(due, self._retry_at) - now

    def _keep(
        self, batch: list[pl.DataFrame], rows: int, oldest: float | None, exc: BaseException
    ) -> None:
        """Put a failed batch back in front of the queue and schedule a retry."""
        with self._wake:
            self._pending[:0] = batch
            self._pending_rows += rows
            if oldest is not None:
                self._oldest = oldest if self._oldest is None else min(oldest, self._oldest)
            self._failures += 1
            pause = min(self.flush_s * 2 ** min(self._failures - 1, 10), MAX_RETRY_PAUSE_S)
            self._retry_at = time.monotonic() + pause
            error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._last_error = error
            pending = self._pending_rows
        logger.error(
            "Could not write %d prediction row(s) to %s (%s); %d row(s) pending, retrying in %.1fs.",
            rows,
            self.table,
            error,
            pending,
            pause,
        )


@functools.cache
def _log_id_schema() -> pl.Schema:
    import polars as pl

    return pl.Schema({
        "_request_id": pl.String,
        "_record": pl.Int64,
        "_model_version": pl.Int64,
        "_predicted_at": pl.Datetime("us", "UTC"),
    })
