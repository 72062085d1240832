"""The prediction log: served rows batched into the lake table ``predictions/<model>``.

A request only appends its rows to an in-memory list; a background thread writes them as one
Delta commit when ``batch_rows`` rows are pending or the oldest has waited ``flush_s`` seconds.
``close`` writes whatever is left, and runs at interpreter exit too.

The log never blocks a request and never grows without bound:

- A write that fails for a passing reason (the lake unreachable) keeps the rows and is retried
  with a growing pause; after ``max_attempts`` failed attempts the batch goes to the
  dead-letter table ``deadletter/predictions/<model>`` and the queue moves on.
- A batch that can never be written (its types conflict with the table's) is split into the
  requests it came from; those that still do not fit go to the dead-letter table at once with
  the reason, the others are written.
- At most ``max_pending_rows`` rows wait in memory. When one more request would pass the bound,
  the oldest pending requests are handed to the dead-letter table (the writer thread writes
  them next, ahead of the queue).
- A write whose commit may have landed although it raised (the lake folder moved away
  meanwhile) is neither retried nor dead-lettered until the table tells: every commit carries
  its batch's id (``loopml.batch_id``), and the rows wait until the table's history, read
  again before each later write, holds that id (they are written) or not (they are retried
  or dead-lettered as above). Only ``close`` hands them on unsettled: to the dead letters
  with their batch id, which ``replay_dead_letter_file`` skips if the commit did land.
- Rows the dead-letter table cannot take either (the whole lake unwritable) go to the
  dead-letter file (in ``dead_letter_dir``, outside the lake; see ``_deadletter``). Only when
  that fails too - or when the rows waiting for the dead letters pass the bound as well - are
  they dropped, with an ERROR log line, and counted in ``dropped_rows`` (``/health`` and
  ``/metrics`` show it).

Dead-letter rows keep every column as text, plus ``_reason`` and ``_failed_at``, so rows whose
types conflict still fit one table. Every row added is, in the end, exactly one of written,
dead-lettered (table or file) or dropped: ``added_rows == written_rows + dead_letter_rows +
dead_letter_file_rows + dropped_rows + pending_rows`` whenever no write is under way.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loopml.core.errors import (
    LakeCommittedError,
    LakeCommitUnknownError,
    LakeConflictError,
    LakeError,
    ServeError,
    first_line,
)
from loopml.lake import table_name
from loopml.serve._attempt import BATCH_TAG, Attempt, landed, new_batch_id
from loopml.serve._deadletter import (
    dead_letter_path,
    write_dead_letter,
    write_dead_letter_file,
)
from loopml.serve._layout import log_rows

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    from loopml.lake import Lake

logger = logging.getLogger("loopml.serve")

CLOSE_ATTEMPTS = 3
MAX_RETRY_PAUSE_S = 60.0
MAX_ATTEMPTS = 5


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
        self,
        lake: Lake,
        model_name: str,
        *,
        batch_rows: int = 1000,
        flush_s: float = 2.0,
        max_pending_rows: int = 200_000,
        max_attempts: int = MAX_ATTEMPTS,
        dead_letter_dir: str | Path | None = None,
        check: Callable[[pl.DataFrame], list[tuple[str, str, str, int]]] | None = None,
    ):
        if batch_rows < 1 or not flush_s > 0 or max_pending_rows < 1 or max_attempts < 1:
            raise ServeError(
                f"The prediction log needs batch_rows >= 1, flush_s > 0, max_pending_rows >= 1 "
                f"and max_attempts >= 1; got {batch_rows}, {flush_s}, {max_pending_rows} and "
                f"{max_attempts}.",
                hint="Set serving.log_batch_rows, serving.log_flush_s and "
                "serving.log_max_pending_rows in loopml.yaml.",
            )
        self.lake = lake
        self.model_name = model_name
        self.table = table_name("predictions", model_name)
        self.dead_letter_table = table_name("deadletter", self.table)
        self.batch_rows = batch_rows
        self.flush_s = float(flush_s)
        self.max_pending_rows = max_pending_rows
        self.max_attempts = max_attempts
        # where rows go when the lake cannot take them, even as dead letters
        self.dead_letter_file = (None if dead_letter_dir is None
                                 else dead_letter_path(dead_letter_dir, self.dead_letter_table))
        # requests pushed out by the bound, waiting for the dead-letter table
        self._overflow: list[pl.DataFrame] = []
        self._overflow_rows = 0
        self._added_rows = 0
        self._dead_rows = 0
        self._dead_file_rows = 0
        self._dropped_rows = 0
        self._last_dead_letter: str | None = None
        # validates the rows of each write off the request path: (column, rule, severity,
        # rows) of the rules they broke, counted in ``contract_violations``
        self._check = check
        self._violations: Counter[tuple[str, str, str]] = Counter()
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
        # the write whose commit may have landed, until the table tells (see ``_settle``)
        self._unsure: Attempt | None = None
        # the table's version before the next write (guarded by ``_writing``)
        self._seen: int | None = None
        self._seen_known = False
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
        """Rows received but not yet committed to the lake (or not yet known to be)."""
        with self._wake:
            return self._pending_rows + (0 if self._unsure is None else self._unsure.rows)

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
    def added_rows(self) -> int:
        """Rows handed to ``add`` since the log was made."""
        with self._wake:
            return self._added_rows

    @property
    def dead_letter_rows(self) -> int:
        """Rows written to the dead-letter table instead of the log table."""
        with self._wake:
            return self._dead_rows

    @property
    def dead_letter_file_rows(self) -> int:
        """Rows written to the dead-letter file (the lake could not take them)."""
        with self._wake:
            return self._dead_file_rows

    @property
    def dropped_rows(self) -> int:
        """Rows lost because neither the log table nor the dead-letter table took them."""
        with self._wake:
            return self._dropped_rows

    @property
    def last_dead_letter(self) -> str | None:
        """Why rows last went to the dead-letter table, or None if none ever did."""
        with self._wake:
            return self._last_dead_letter

    @property
    def contract_violations(self) -> dict[tuple[str, str, str], int]:
        """Logged rows that broke a rule of the contract, by (column, rule, severity)."""
        with self._wake:
            return dict(self._violations)

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
            self._added_rows += frame.height
            if self._oldest is None:
                self._oldest = time.monotonic()
            self._enforce_bound()
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False  # a log used again after close starts a new writer
                self._start()
            self._wake.notify()

    # the log's row layout, shared by the server and batch scoring
    rows = staticmethod(log_rows)

    def flush(self) -> int:
        """Write every pending row now as one commit and return how many were written.

        Rows pushed out by the pending bound go to the dead-letter table first. A batch
        whose types conflict with the table is written request by request; the requests that
        still do not fit go to the dead-letter table. After any other failure the rows stay
        pending (the background thread retries them) and ``LakeError`` is raised; after
        ``max_attempts`` failures in a row they go to the dead-letter table instead. Rows of
        a write whose commit may have landed wait until the table tells (see the module).
        """
        with self._writing:
            with self._wake:
                batch, rows = self._pending, self._pending_rows
                oldest = self._oldest
                self._pending, self._pending_rows, self._oldest = [], 0, None
                overflow, self._overflow, self._overflow_rows = self._overflow, [], 0
            if overflow:
                reason = f"the log held more than {self.max_pending_rows} pending rows"
                self._dead_letter(overflow, reason, drop_on_failure=True)
            try:
                again, done = self._settle()
            except LakeError as exc:  # the lake cannot tell: it cannot take rows either
                return self._failed(batch, rows, oldest, exc)
            if again:
                batch = [*again, *batch]
                rows += sum(f.height for f in again)
                oldest = time.monotonic() if oldest is None else oldest
            if not batch:
                return done
            try:
                self._append(batch, rows)
            except LakeConflictError as exc:
                return done + self._write_apart(batch, exc)
            except LakeCommitUnknownError as exc:
                return done + self._unknown(rows, oldest, exc)
            except LakeError as exc:
                return done + self._failed(batch, rows, oldest, exc)
            self._written(rows)
            return done + rows

    def close(self) -> None:
        """Stop the background thread and write every pending row.

        Tries a few times; rows that still cannot be written go to the dead-letter table
        (those of a write that may have landed with its batch id, so that a replay skips them
        if it did). If that fails too, logs and raises ``ServeError`` saying how many rows are
        lost, rather than dropping them silently.
        """
        with self._wake:
            self._stopping = True
            thread = self._thread
            self._wake.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._unhook()
        error = LakeError("not written")
        for attempt in range(1, CLOSE_ATTEMPTS + 1):
            try:
                self.flush()
            except LakeError as exc:
                error = exc
            else:  # rows a batch written apart kept, or a write still to settle, remain
                if not self.pending_rows:
                    return
                error = LakeError(self.last_error or "rows remain pending")
            if attempt < CLOSE_ATTEMPTS:
                time.sleep(0.25 * attempt)
        with self._writing, self._wake:
            batch, self._pending = self._pending, []
            self._pending_rows, self._oldest = 0, None
            held, self._unsure = self._unsure, None
        lost = 0
        if not self._dead_letter(batch, f"not written at shutdown: {first_line(error)}",
                                 drop_on_failure=True):
            lost += sum(f.height for f in batch)
        if held is not None and not self._dead_letter(
                list(held.frames), "not known at shutdown whether written (a replay skips "
                f"them if so): {first_line(error)}", drop_on_failure=True,
                batch_id=held.batch_id, since=held.since):
            lost += held.rows
        if lost:
            raise ServeError(
                f"{lost} prediction row(s) could not be written to {self.table} "
                f"after {CLOSE_ATTEMPTS} attempts, nor to {self.dead_letter_table}: {error}",
                hint="Check that the lake is reachable and writable.",
            ) from error

    # ---- writing, dead letters and the bound ---------------------------------------------

    def _append(self, batch: list[pl.DataFrame], rows: int) -> None:
        """One commit of ``batch`` tagged with a new batch id; when it may have landed although
        it raised (``LakeCommitUnknownError``), the rows wait in ``_unsure``."""
        import polars as pl

        try:
            frame = pl.concat(batch, how="diagonal_relaxed")
        except pl.exceptions.PolarsError as exc:  # requests whose columns disagree
            raise LakeConflictError(f"The logged rows do not share column types: {exc}") from exc
        self._validate(frame)
        since, batch_id = self._since(), new_batch_id()
        meta = {"loopml.stage": "serve", "loopml.rows": str(rows), BATCH_TAG: batch_id}
        try:
            self._seen = self.lake.append(self.table, frame, metadata=meta).version
        except LakeCommittedError as exc:  # written: only reading the table back failed
            logger.warning("%s", first_line(exc))
        except LakeCommitUnknownError:
            with self._wake:
                self._unsure = Attempt(batch_id=batch_id, since=since, frames=tuple(batch),
                                       rows=rows)
            raise
        except LakeError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the lake keeps the rows
            raise LakeError(
                f"Writing {rows} prediction row(s) to {self.table} failed: {exc}"
            ) from exc

    def _since(self) -> int | None:
        """The table's version before this write (None: no table yet), where to look for its
        commit; read from the lake only until the log's first commit tells it."""
        if not self._seen_known:
            self._seen = self.lake.version(self.table)  # a LakeError here: nothing written
            self._seen_known = True
        return self._seen

    def _settle(self) -> tuple[list[pl.DataFrame], int]:
        """Settle the write whose commit may have landed: (its rows, 0) when it did not land
        (to be written again), ([], its row count) when it did (they count as written), ([],
        0) when there is none; raises ``LakeError`` while the table cannot tell."""
        with self._wake:
            held = self._unsure
        if held is None:
            return [], 0
        found = landed(self.lake, self.table, held.batch_id, held.since)
        if found is None:
            raise LakeError(f"Cannot tell yet whether {held.rows} prediction row(s) reached "
                            f"{self.table}: the table cannot be read.")
        with self._wake:
            self._unsure = None
        if found:
            self._written(held.rows)
            logger.warning("%d prediction row(s) whose write to %s raised had been committed.",
                           held.rows, self.table)
            return [], held.rows
        return list(held.frames), 0

    def _unknown(self, rows: int, oldest: float | None, exc: LakeCommitUnknownError) -> int:
        """After a write that may have landed: settle it at once if the table tells, else
        the rows wait for it (the retry settles it first) and ``exc`` is raised."""
        try:
            again, done = self._settle()
        except LakeError:
            self._keep([], 0, None, exc)
            raise exc from None
        if done:
            return done
        return self._failed(again, rows, oldest, exc)

    def _failed(self, batch: list[pl.DataFrame], rows: int, oldest: float | None,
                exc: LakeError) -> int:
        """After a write that did not land: the rows wait for a retry and ``exc`` is raised,
        or after ``max_attempts`` failures in a row they go to the dead-letter table."""
        with self._wake:
            attempts = self._failures + 1
        if batch and attempts >= self.max_attempts:
            reason = f"not written after {attempts} attempts: {first_line(exc)}"
            if self._dead_letter(batch, reason, drop_on_failure=False):
                with self._wake:
                    self._failures = 0
                return 0
        self._keep(batch, rows, oldest, exc)
        raise exc

    def _validate(self, frame: pl.DataFrame) -> None:
        """Count the rules of the contract the rows broke (a failure here only logs: the
        rows are written all the same). A batch retried after a failed write counts again."""
        if self._check is None:
            return
        try:
            found = self._check(frame)
        except Exception as exc:  # noqa: BLE001 - validation must never cost a prediction
            logger.warning("Could not validate %d logged row(s): %s", frame.height,
                           first_line(exc))
            return
        with self._wake:
            for column, rule, severity, rows in found:
                self._violations[(column, rule, severity)] += rows

    def _written(self, rows: int) -> None:
        with self._wake:
            self._written_rows += rows
            self._commits += 1
            self._failures = 0
            self._retry_at = 0.0
            self._last_error = None

    def _write_apart(self, batch: list[pl.DataFrame], conflict: LakeConflictError) -> int:
        """Write a conflicting batch request by request; what still conflicts is dead-lettered,
        what fails for another reason is kept for a retry."""
        if len(batch) == 1:
            if not self._dead_letter(batch, first_line(conflict), drop_on_failure=False):
                self._keep(batch, batch[0].height, time.monotonic(), conflict)
            return 0
        written, kept, error = 0, [], None
        for frame in batch:
            if error is not None:  # the lake fails: keep the rest for the retry
                kept.append(frame)
                continue
            try:
                self._append([frame], frame.height)
            except LakeConflictError as exc:
                if not self._dead_letter([frame], first_line(exc), drop_on_failure=False):
                    kept.append(frame)
            except LakeCommitUnknownError as exc:  # the frame waits in _unsure
                error = exc
            except LakeError as exc:
                kept.append(frame)
                error = exc
            else:
                self._written(frame.height)
                written += frame.height
        if kept or error is not None:
            self._keep(kept, sum(f.height for f in kept), time.monotonic() if kept else None,
                       error or conflict)
        return written

    def _dead_letter(
        self, batch: list[pl.DataFrame], reason: str, *, drop_on_failure: bool,
        batch_id: str | None = None, since: int | None = None,
    ) -> bool:
        """Write ``batch`` to the dead-letter table as text with ``reason``; True on success.
        ``batch_id`` and ``since`` name the write the rows may have landed with, if any.

        On failure the rows are counted as dropped (with an ERROR log line) when
        ``drop_on_failure``, else left to the caller."""
        rows = sum(f.height for f in batch)
        if rows == 0:
            return True
        if batch_id is None:
            batch_id, since = new_batch_id(), self._seen
        try:
            write_dead_letter(self.lake, self.dead_letter_table, batch, reason,
                              batch_id=batch_id, since=since)
        except Exception as exc:  # noqa: BLE001 - the last resort must not raise
            if self._dead_letter_to_file(batch, rows, reason, exc, batch_id=batch_id,
                                         since=since):
                return True
            if drop_on_failure:
                with self._wake:
                    self._dropped_rows += rows
                logger.error(
                    "Dropped %d prediction row(s) for %s: %s; the dead-letter table %s could "
                    "not take them either (%s).", rows, self.table, reason,
                    self.dead_letter_table, first_line(exc),
                )
            else:
                logger.error("Could not write %d row(s) to %s: %s", rows,
                             self.dead_letter_table, first_line(exc))
            return False
        with self._wake:
            self._dead_rows += rows
            self._last_dead_letter = reason
        logger.error("Wrote %d prediction row(s) to %s instead of %s: %s",
                     rows, self.dead_letter_table, self.table, reason)
        return True

    def _dead_letter_to_file(self, batch: list[pl.DataFrame], rows: int, reason: str,
                             table_error: BaseException, *, batch_id: str,
                             since: int | None) -> bool:
        """The dead letters the lake could not take, appended to the dead-letter file."""
        if self.dead_letter_file is None:
            return False
        try:
            write_dead_letter_file(self.dead_letter_file, batch, reason, batch_id=batch_id,
                                   since=since)
        except Exception as exc:  # noqa: BLE001 - the caller drops or keeps the rows
            logger.error("Could not write %d row(s) to %s either: %s", rows,
                         self.dead_letter_file, first_line(exc))
            return False
        with self._wake:
            self._dead_file_rows += rows
            self._last_dead_letter = reason
        logger.error("Wrote %d prediction row(s) to %s: %s; the lake could not take them (%s).",
                     rows, self.dead_letter_file, reason, first_line(table_error))
        return True

    def _enforce_bound(self) -> None:
        """Past ``max_pending_rows``, hand the oldest pending requests to the dead-letter
        queue, and drop the oldest of that queue past the same bound (caller holds the lock)."""
        while self._pending_rows > self.max_pending_rows and self._pending:
            frame = self._pending.pop(0)
            self._pending_rows -= frame.height
            self._overflow.append(frame)
            self._overflow_rows += frame.height
        while self._overflow_rows > self.max_pending_rows and self._overflow:
            frame = self._overflow.pop(0)
            self._overflow_rows -= frame.height
            self._dropped_rows += frame.height
            logger.error(
                "Dropped %d prediction row(s) for %s: more than %d rows were waiting for "
                "both the log table and the dead-letter table.",
                frame.height, self.table, self.max_pending_rows,
            )
        if not self._pending:
            self._oldest = None
        if self._overflow:
            self._retry_at = 0.0  # dead-letter them now rather than after a retry pause

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
        if self._overflow:
            return 0.0
        if self._oldest is None:  # only a write to settle: at the retry
            return None if self._unsure is None else max(now, self._retry_at) - now
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
            self._enforce_bound()
            self._last_error = error = first_line(exc)
            pending = self._pending_rows + (0 if self._unsure is None else self._unsure.rows)
        what = f"{rows} prediction row(s)" if rows else "the rows of a write that may have landed"
        logger.error(
            "Could not write %s to %s (%s); %d row(s) pending, retrying in %.1fs.",
            what, self.table, error, pending, pause,
        )  # fmt: skip
