"""MQTT sources: a broker's topics taken in micro-batches, at least once.

The reader keeps a persistent session on the broker (MQTT v5, ``clean_start`` off, a stable
client id) and acknowledges a message only once the chunk holding it is committed
(``Chunk.on_commit``). A message received but not acknowledged when loopml crashes, is killed
or loses its connection stays in the session, and the broker delivers it again; the source's
``message_key`` (the default key of the clean table) makes that second copy replace the first.

Why MQTT v5: the broker sends a client at most as many unacknowledged QoS 1 messages as the
client's Receive Maximum (MQTT 3.1.1: Mosquitto's ``max_inflight_messages``, 20), so a reader
that acknowledges after a commit needs a window larger than a batch. The reader asks for
65535. Beyond that window a broker queues at most ``max_queued_messages`` per session
(Mosquitto: 1000) and drops the rest: a consumer lagging further behind, or a session whose
consumer is away (between two ``loopml ingest`` runs without ``--follow``), loses messages at
the broker. Keep ``loopml ingest SOURCE --follow`` running, or raise the broker's
``max_queued_messages``.

Why QoS 1 only: with QoS 2 the client's first answer (PUBREC) already ends the broker's
delivery duty, so a message not yet committed at a crash is never sent again.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.core.errors import SourceError
from loopml.core.records import Chunk

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.config import MqttSource

_log = logging.getLogger(__name__)
_RECEIVE_MAXIMUM = 65535  # the largest window MQTT allows
_POLL_S = 0.05  # how often the network thread looks for acknowledgements to send
_KEEPALIVE_S = 30
_READ_PACKETS = 1000  # packets read per pass of the network thread (acks are sent between)
_PROVENANCE = ("_source_file", "_source_row")


@dataclass(frozen=True, slots=True)
class _Message:
    generation: int  # the connection it arrived on; acknowledgements go to that one only
    mid: int
    qos: int
    topic: str
    payload: bytes


def mqtt_chunks(
    config: MqttSource,
    *,
    cursor: dict[str, Any] | None = None,
    follow: bool = False,
    stop: threading.Event | None = None,
) -> Iterator[Chunk]:
    """Chunks of the messages on ``config.topics``: one every ``batch_messages`` messages or
    ``batch_seconds`` seconds.

    Without ``follow`` the reader ends once no message came for ``idle_s``; with it, when
    ``stop`` is set. Either way it first yields what it holds as a last chunk. The cursor is
    ``{"client_id": ..., "messages": n}``, n counting the messages committed so far (it
    numbers ``_source_row``); the broker's session is the real position in the stream.
    """
    if config.qos == 2:
        raise SourceError(
            f"Source {config.name!r} asks for QoS 2; loopml reads MQTT at QoS 0 or 1.",
            hint="Set qos: 1 and a message_key: a QoS 1 message is sent again until loopml "
            "has committed it, and the key removes the second copy (QoS 2 messages are "
            "delivered at QoS 1 to a QoS 1 subscription).",
        )
    stream = _Stream(config)
    counter = int((cursor or {}).get("messages", 0))
    stream.start()
    try:
        buffer: list[_Message] = []
        first_at = 0.0
        purged = 0
        while True:
            stream.raise_error()
            stopping = stop is not None and stop.is_set()
            if stream.redelivered_below > purged:
                # a reconnect with the session intact: the broker sends these again
                purged = stream.redelivered_below
                buffer = [m for m in buffer if m.qos == 0 or m.generation >= purged]
            now = time.monotonic()
            wait = _POLL_S
            if buffer:
                wait = max(0.0, min(wait, first_at + config.batch_seconds - now))
            message = None if stopping else stream.get(wait)
            while message is not None:
                if not (message.qos and message.generation < purged):
                    if not buffer:
                        first_at = time.monotonic()
                    buffer.append(message)
                if len(buffer) >= config.batch_messages:
                    break
                message = stream.get(0)
            now = time.monotonic()
            idle = not follow and stream.idle_for(now) >= config.idle_s
            full = len(buffer) >= config.batch_messages
            due = bool(buffer) and now - first_at >= config.batch_seconds
            if stopping:  # take what had arrived when stop was seen, then end
                for _ in range(stream.waiting()):
                    message = stream.get(0)
                    if message is not None and not (message.qos and message.generation < purged):
                        buffer.append(message)
            if full or due or ((stopping or idle) and buffer):
                take = buffer if stopping else buffer[: config.batch_messages]
                buffer = buffer[len(take):]
                first_at = time.monotonic()
                yield _chunk(config, take, counter, stream)
                counter += len(take)
                continue
            if stopping or idle:
                return
    finally:
        stream.close()


def _chunk(config: MqttSource, messages: list[_Message], start: int, stream: _Stream) -> Chunk:
    rows: list[dict[str, Any]] = []
    row_topics: list[str] = []
    row_numbers: list[int] = []
    bad: list[tuple[str, int, str, str]] = []
    for number, message in enumerate(messages, start + 1):
        row, reason = _parse(message.payload, config.message_key)
        if row is None:
            raw = message.payload.decode("utf-8", errors="backslashreplace")
            bad.append((message.topic, number, raw, reason))
        else:
            rows.append(row)
            row_topics.append(message.topic)
            row_numbers.append(number)
    acks = [(m.generation, m.mid) for m in messages if m.qos]
    return Chunk(
        source=config.name,
        frame=_frame(rows, row_topics, row_numbers, config.message_key),
        cursor={"client_id": stream.client_id, "messages": start + len(messages)},
        rejected=_rejected(bad) if bad else None,
        on_commit=(lambda: stream.ack(acks)) if acks else None,
    )


def _parse(payload: bytes, message_key: str | None) -> tuple[dict[str, Any] | None, str]:
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"payload is not JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"payload is JSON but not an object (found {type(value).__name__})"
    row: dict[str, Any] = {}
    _flatten(value, "", row)
    if message_key is not None and row.get(message_key) is None:
        return None, f"payload has no {message_key!r} field (the source's message_key)"
    return row, ""


def _flatten(value: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for name, item in value.items():
        if isinstance(item, dict) and item:
            _flatten(item, f"{prefix}{name}.", out)
        else:
            out[f"{prefix}{name}"] = item


def _frame(
    rows: list[dict[str, Any]], topics: list[str], numbers: list[int], message_key: str | None
) -> pl.DataFrame:
    import polars as pl

    names: dict[str, None] = {}
    if message_key is not None:
        names[message_key] = None  # the key column exists even in a chunk without rows
    for row in rows:
        names.update(dict.fromkeys(row))
    for name in _PROVENANCE:  # the reader's own columns win over payload fields so named
        names.pop(name, None)
    columns = [_series(name, [row.get(name) for row in rows]) for name in names]
    columns.append(pl.Series("_source_file", topics, dtype=pl.String))
    columns.append(pl.Series("_source_row", numbers, dtype=pl.Int64))
    return pl.DataFrame(columns)


def _series(name: str, values: list[Any]) -> pl.Series:
    """One column in the payload's own type; mixed types become JSON text (lossless)."""
    import polars as pl

    kinds = {type(v) for v in values if v is not None}
    dtype = {
        frozenset(): pl.Null,
        frozenset({bool}): pl.Boolean,
        frozenset({int}): pl.Int64,
        frozenset({float}): pl.Float64,
        frozenset({int, float}): pl.Float64,
        frozenset({str}): pl.String,
    }.get(frozenset(kinds))
    try:
        if dtype is not None:
            return pl.Series(name, values, dtype=dtype, strict=True)
        if kinds == {list}:
            return pl.Series(name, values, strict=True)
    except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
        pass  # e.g. an integer beyond Int64, or lists of mixed items
    text = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
    return pl.Series(name, text, dtype=pl.String)


def _rejected(bad: list[tuple[str, int, str, str]]) -> pl.DataFrame:
    import polars as pl

    topics, numbers, raws, reasons = zip(*bad, strict=True)
    return pl.DataFrame(
        {
            "_source_file": pl.Series(topics, dtype=pl.String),
            "_source_row": pl.Series(numbers, dtype=pl.Int64),
            "_raw": pl.Series(raws, dtype=pl.String),
            "_reasons": pl.Series(reasons, dtype=pl.String),
        }
    )


class _Stream:
    """One paho client driven by one network thread that alone calls into paho.

    The reader's thread takes messages from a queue and hands acknowledgements back through
    another; the network thread sends them only on the connection the message came on.
    """

    def __init__(self, config: MqttSource):
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.config = config
        self.client_id = config.client_id or f"loopml-{config.name}"
        self.redelivered_below = 0  # messages of earlier connections come again: drop them
        self._messages: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._acks: queue.SimpleQueue[list[tuple[int, int]]] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._error: SourceError | None = None
        self._generation = 0
        self._connected = False  # a CONNACK came and no disconnect since
        self._socket = False  # paho holds an open socket
        self._attempts = 0  # failed connection attempts since the last CONNACK
        self._last_failure = ""
        self._drops: deque[float] = deque()  # when connections dropped, in the last minute
        self._active_at: float | None = None  # the last message or subscription
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        user, password = _credentials(config)
        if user is not None:
            self._client.username_pw_set(user, password)
        props = Properties(PacketTypes.CONNECT)
        props.ReceiveMaximum = _RECEIVE_MAXIMUM
        props.SessionExpiryInterval = config.session_expiry_s
        self._client.connect_async(  # only stores the address: the network thread connects
            config.host, config.port, keepalive=_KEEPALIVE_S, clean_start=False, properties=props
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._thread = threading.Thread(
            target=self._run, name=f"loopml-mqtt-{config.name}", daemon=True
        )

    # ---- the reader's side --------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def get(self, timeout: float) -> _Message | None:
        try:
            if timeout <= 0:
                return self._messages.get_nowait()
            return self._messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def waiting(self) -> int:
        return self._messages.qsize()

    def idle_for(self, now: float) -> float:
        """Seconds since the last message, or 0 while not subscribed."""
        active = self._active_at
        return 0.0 if active is None or not self._connected else now - active

    def ack(self, acks: list[tuple[int, int]]) -> None:
        self._acks.put(acks)

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=10)

    # ---- the network thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - the reader's thread reports it
            self._fail(f"the MQTT client failed: {type(exc).__name__}: {exc}")
        finally:
            if self._socket:
                self._client.disconnect()
                self._client.loop(timeout=0.2)

    def _loop(self) -> None:
        import paho.mqtt.client as mqtt

        config = self.config
        while self._error is None:
            if not self._socket:
                if self._closing.is_set() or not self._connect():
                    return
                continue
            closing = self._closing.is_set()
            self._send_acks()  # every acknowledgement queued before close() included
            if closing:
                self._client.disconnect()
                for _ in range(20):
                    if self._client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                        break
                self._socket = False
                return
            rc = self._client.loop(timeout=_POLL_S)
            if rc == mqtt.MQTT_ERR_SUCCESS and self._socket:
                # paho's loop reads one packet per select; read on while data is waiting
                rc = self._client.loop_read(max_packets=_READ_PACKETS)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                self._socket = False
                self._connected = False
                if len(self._drops) > config.retries:
                    self._fail(
                        f"the connection to {config.host}:{config.port} dropped "
                        f"{len(self._drops)} times in a minute (last: {self._last_failure}).",
                        hint="Is another consumer using client id "
                        f"{self.client_id!r}? Each one takes the session over from the other; "
                        "give each its own sources.<name>.client_id. Messages not yet committed "
                        "stay with the broker.",
                    )

    def _connect(self) -> bool:
        """One connection attempt after the backoff; False once the reader should stop."""
        config = self.config
        if self._attempts > config.retries:
            self._fail(
                f"cannot reach the MQTT broker at {config.host}:{config.port}: "
                f"{self._last_failure} ({self._attempts} attempts).",
                hint="Start the broker, or fix sources.<name>.host and port in loopml.yaml. "
                "Messages not yet committed stay with the broker and come with the next ingest.",
            )
            return False
        delay = min(config.backoff_s * 2 ** (self._attempts - 1), 30.0)
        if self._attempts and self._closing.wait(delay):
            return False
        self._attempts += 1
        try:
            self._client.reconnect()
        except (OSError, ValueError) as exc:
            self._last_failure = f"{type(exc).__name__}: {exc}"
            return True
        self._socket = True
        return True

    def _send_acks(self) -> None:
        while True:
            try:
                acks = self._acks.get_nowait()
            except queue.Empty:
                return
            for generation, mid in acks:
                # an ack on a later connection could hit another message with the same id;
                # the broker sends the earlier connection's messages again instead
                if generation == self._generation and self._connected:
                    self._client.ack(mid, 1)

    def _fail(self, message: str, *, hint: str | None = None) -> None:
        if self._error is None:
            self._error = SourceError(f"MQTT source {self.config.name!r}: {message}", hint=hint)

    # ---- paho callbacks (network thread) --------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        from paho.mqtt.subscribeoptions import SubscribeOptions

        if reason.is_failure:
            self._fail(
                f"the broker at {self.config.host}:{self.config.port} refused the connection: "
                f"{reason}.",
                hint="Check sources.<name>.username_env / password_env and the broker's ACL.",
            )
            return
        self._generation += 1
        if self._generation > 1 and flags.session_present:
            self.redelivered_below = self._generation
        self._connected = True
        self._attempts = 0
        self._active_at = time.monotonic()
        options = SubscribeOptions(
            qos=self.config.qos, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
        )
        client.subscribe([(topic, options) for topic in self.config.topics])

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        refused = [t for t, r in zip(self.config.topics, reasons, strict=False) if r.is_failure]
        if refused:
            self._fail(
                f"the broker refused the subscription to {', '.join(refused)}.",
                hint="Check the topic filters and the broker's ACL for this client.",
            )
            return
        self._active_at = time.monotonic()
        _log.info(
            "MQTT source %r subscribed to %s at %s:%s as %r",
            self.config.name, ", ".join(self.config.topics), self.config.host, self.config.port,
            self.client_id,
        )

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        was_connected, self._connected = self._connected, False
        self._last_failure = f"disconnected ({reason})"
        if was_connected and not self._closing.is_set():
            _log.warning("MQTT source %r: %s; reconnecting", self.config.name, self._last_failure)
            now = time.monotonic()
            self._drops.append(now)
            while self._drops and self._drops[0] < now - 60:
                self._drops.popleft()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self._active_at = time.monotonic()
        self._messages.put(
            _Message(self._generation, message.mid, message.qos, message.topic, message.payload)
        )


def _credentials(config: MqttSource) -> tuple[str | None, str | None]:
    values: list[str | None] = []
    for field in ("username_env", "password_env"):
        var = getattr(config, field)
        if var is None:
            values.append(None)
            continue
        if var not in os.environ:
            raise SourceError(
                f"MQTT source {config.name!r}: the environment variable {var} "
                f"(sources.<name>.{field}) is not set.",
                hint=f"Export {var} before running loopml.",
            )
        values.append(os.environ[var])
    return values[0], values[1]

