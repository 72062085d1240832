"""MQTT sources against the local Mosquitto broker: batching, acknowledgement after commit,
redelivery after a crash or a dropped connection, and the errors a user meets."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from loopml.core.config import MqttSource
from loopml.core.errors import SourceError
from loopml.core.records import Chunk
from loopml.lake import Lake
from loopml.sources import read_chunks

HOST = os.environ.get("LOOPML_TEST_MQTT_HOST", "127.0.0.1")
PORT = int(os.environ.get("LOOPML_TEST_MQTT_PORT", "1883"))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


needs_broker = pytest.mark.skipif(
    not _reachable(HOST, PORT), reason=f"no MQTT broker at {HOST}:{PORT}"
)


# ---- helpers ---------------------------------------------------------------------------------


def paho_client(client_id: str = "", **kw: object):  # noqa: ANN201 - paho's Client
    import paho.mqtt.client as mqtt

    return mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, **kw
    )


def publish(topic: str, payloads: Iterator[bytes | str], *, qos: int = 1) -> int:
    """Publish every payload and wait until the broker has taken each one (PUBACK)."""
    client = paho_client()
    client.max_inflight_messages_set(500)
    client.connect(HOST, PORT)
    client.loop_start()
    sent, pending = 0, []
    try:
        for payload in payloads:
            pending.append(client.publish(topic, payload, qos=qos))
            sent += 1
            if len(pending) >= 5000:  # paho holds at most 65535 unacknowledged messages
                for info in pending:
                    info.wait_for_publish(timeout=60)
                pending = []
        for info in pending:
            info.wait_for_publish(timeout=60)
        assert all(info.is_published() for info in pending)
    finally:
        client.disconnect()
        client.loop_stop()
    return sent


def messages(start: int, stop: int) -> Iterator[str]:
    return (json.dumps({"id": i, "reading": {"t": i / 10, "unit": "C"}})
            for i in range(start, stop))


def drop_session(client_id: str) -> None:
    """Remove a test's persistent session from the broker (clean start, no expiry)."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = paho_client(client_id)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect(HOST, PORT, clean_start=True, properties=props)
    client.loop(timeout=0.5)
    client.disconnect()
    client.loop(timeout=0.2)


@pytest.fixture
def source() -> Iterator[dict[str, object]]:
    """The fields of a fresh MQTT source: a unique topic and client id, removed afterwards."""
    tag = uuid.uuid4().hex[:10]
    fields: dict[str, object] = {
        "name": "sensors",
        "kind": "mqtt",
        "host": HOST,
        "port": PORT,
        "topics": [f"loopml-test/{tag}/#"],
        "client_id": f"loopml-test-{tag}",
        "message_key": "id",
        "idle_s": 1.5,
        "retries": 3,
        "backoff_s": 0.1,
    }
    yield fields
    if _reachable(HOST, PORT):
        drop_session(str(fields["client_id"]))


def topic_of(fields: dict[str, object], leaf: str = "a") -> str:
    return str(fields["topics"][0]).removesuffix("#") + leaf  # type: ignore[index]


def subscribe_once(fields: dict[str, object]) -> None:
    """Open the source's session (subscription included) and leave, as a first ingest would."""
    config = MqttSource.model_validate({**fields, "idle_s": 0.3})
    assert list(read_chunks(config)) == []


@contextlib.contextmanager
def online(fields: dict[str, object]) -> Iterator[threading.Event]:
    """An event set once the reader in this process has subscribed (publish only then: an
    offline session keeps just max_queued_messages, 1000 by default)."""
    event = threading.Event()

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if "subscribed" in text and str(fields["client_id"]) in text:
                event.set()

    log = logging.getLogger("loopml.sources._mqtt")
    handler, level = Handler(), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield event
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def commit_all(config: MqttSource, **kw: object) -> list[Chunk]:
    """Read every chunk, "committing" each before asking for the next, as the ingest does."""
    chunks = []
    for chunk in read_chunks(config, **kw):  # type: ignore[arg-type]
        chunks.append(chunk)
        if chunk.on_commit is not None:
            chunk.on_commit()
    return chunks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- in-process --------------------------------------------------------------------------------


@pytest.mark.services
@needs_broker
def test_messages_become_rows_and_bad_payloads_are_rejected(source: dict[str, object]) -> None:
    """JSON objects become flattened rows with topic and number; other payloads are rejected."""
    config = MqttSource.model_validate({**source, "batch_messages": 20})
    assert config.key == ("id",)  # the message key is the clean table's key
    subscribe_once(source)
    publish(topic_of(source), [*messages(0, 45), b"\xffnot json", "[1, 2]", '{"other": 1}'])
    chunks = commit_all(config)
    assert [c.frame.height for c in chunks] == [20, 20, 5]
    assert [c.cursor["messages"] for c in chunks] == [20, 40, 48]
    frame = pl.concat([c.frame for c in chunks])
    assert frame.columns == ["id", "reading.t", "reading.unit", "_source_file", "_source_row"]
    assert frame["id"].to_list() == list(range(45))
    assert frame.schema["reading.t"] == pl.Float64
    assert set(frame["_source_file"]) == {topic_of(source)}
    assert frame["_source_row"].to_list() == list(range(1, 46))
    rejected = chunks[-1].rejected
    assert rejected is not None
    assert rejected["_source_row"].to_list() == [46, 47, 48]
    assert rejected["_raw"].to_list() == ["\\xffnot json", "[1, 2]", '{"other": 1}']
    reasons = rejected["_reasons"].to_list()
    assert "not JSON" in reasons[0] and "not an object" in reasons[1] and "'id'" in reasons[2]
    # a later ingest numbers on from the cursor and finds nothing left
    assert list(read_chunks(config, cursor=chunks[-1].cursor)) == []


@pytest.mark.services
@needs_broker
def test_messages_not_acknowledged_come_again(source: dict[str, object]) -> None:
    """A chunk whose commit never completed is delivered again by the next ingest; once
    committed, it is gone from the broker."""
    config = MqttSource.model_validate({**source, "batch_messages": 40})
    subscribe_once(source)
    publish(topic_of(source), messages(0, 100))
    first = list(read_chunks(config))  # "crashes": on_commit is never called
    assert sum(c.frame.height for c in first) == 100
    again = commit_all(config)
    assert sorted(pl.concat([c.frame for c in again])["id"].to_list()) == list(range(100))
    assert list(read_chunks(config)) == []


@pytest.mark.services
@needs_broker
def test_follow_flushes_the_partial_batch_when_stopped(source: dict[str, object]) -> None:
    """With follow, the reader runs until stop is set, then yields the rows it holds."""
    config = MqttSource.model_validate(
        {**source, "batch_messages": 1000, "batch_seconds": 3600, "idle_s": 0.2}
    )
    stop = threading.Event()
    got: list[int] = []

    def consume() -> None:
        for chunk in read_chunks(config, follow=True, stop=stop):
            got.extend(chunk.frame["id"].to_list())
            chunk.on_commit()  # type: ignore[misc]

    subscribe_once(source)  # the session queues what comes before the consumer connects
    thread = threading.Thread(target=consume)
    thread.start()
    publish(topic_of(source), messages(0, 30))
    time.sleep(1.0)  # longer than idle_s: follow keeps reading
    assert thread.is_alive() and got == []
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert got == list(range(30))


@pytest.mark.services
@needs_broker
def test_a_connection_taken_over_reconnects_and_loses_nothing(source: dict[str, object]) -> None:
    """Another client with our id kicks the reader off mid-stream; it reconnects, the broker
    sends the unacknowledged messages again, and the clean table ends with each one once."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    n = 6000
    config = MqttSource.model_validate(
        {**source, "batch_messages": 500, "batch_seconds": 0.5, "idle_s": 2.0}
    )
    received: list[int] = []
    clean: dict[int, int] = {}

    def kick() -> None:
        # same client id, session kept: the broker hands the session to this client, which
        # acknowledges nothing and leaves
        intruder = paho_client(str(source["client_id"]), manual_ack=True)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        intruder.connect(HOST, PORT, clean_start=False, properties=props)
        for _ in range(5):
            intruder.loop(timeout=0.05)
        intruder.disconnect()
        intruder.loop(timeout=0.1)

    with online(source) as subscribed:
        publisher = threading.Thread(
            target=lambda: subscribed.wait(30) and publish(topic_of(source), messages(0, n))
        )
        publisher.start()
        for number, chunk in enumerate(read_chunks(config), 1):
            ids = chunk.frame["id"].to_list()
            received.extend(ids)
            clean.update(dict.fromkeys(ids, 1))  # an upsert by key, as the ingest does
            if number == 2:
                # every message is out to the reader before the takeover: one published while
                # no client holds the session is kept only within max_queued_messages (1000)
                publisher.join()
                kick()  # this chunk is committed, its acknowledgement is now too late
            chunk.on_commit()  # type: ignore[misc]
        publisher.join()
    assert sorted(clean) == list(range(n))
    assert len(received) > n  # some messages did come twice: the takeover really happened


@pytest.mark.services
def test_an_absent_broker_is_a_clear_error(source: dict[str, object]) -> None:
    """No broker at the address: a few reconnects with backoff, then one SourceError."""
    port = free_port()
    config = MqttSource.model_validate({**source, "port": port, "retries": 2})
    with pytest.raises(SourceError) as info:
        list(read_chunks(config))
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "3 attempts" in str(info.value)
    assert info.value.hint is not None and "broker" in info.value.hint


def test_qos_2_and_missing_credentials_are_clear_errors() -> None:
    """QoS 2 cannot be acknowledged after a commit; a credential variable must be set."""
    base = {"name": "s", "kind": "mqtt", "topics": ["t"], "port": free_port()}
    with pytest.raises(SourceError, match="QoS 2") as info:
        list(read_chunks(MqttSource.model_validate({**base, "qos": 2})))
    assert info.value.hint is not None and "qos: 1" in info.value.hint
    var = f"LOOPML_TEST_UNSET_{uuid.uuid4().hex[:6].upper()}"
    with pytest.raises(SourceError, match=var):
        list(read_chunks(MqttSource.model_validate({**base, "password_env": var})))


# ---- `loopml ingest` in a subprocess -----------------------------------------------------------

# the CLI with the reader's log on stderr, to see when it has subscribed
LOOPML = (
    "import logging, sys; logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')"
    "; from loopml.cli import main; sys.exit(main())"
)


def make_project(root: Path, fields: dict[str, object]) -> Path:
    """A project with the MQTT source 'sensors' and its contract."""
    import yaml

    from loopml.core.contract import ColumnSpec, Contract

    root.mkdir(parents=True, exist_ok=True)
    config = {"name": "iot", "sources": [fields],
              "problem": {"source": "sensors", "target": "reading.unit"}}
    (root / "loopml.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    columns = (ColumnSpec(name="id", type="integer", nullable=False),
               ColumnSpec(name="reading.t", type="float"),
               ColumnSpec(name="reading.unit", type="string"))
    Contract(source="sensors", columns=columns).save(root / "contracts" / "sensors.yaml")
    return root


class Ingest:
    """``loopml ingest sensors [--follow] --json`` running in a subprocess."""

    def __init__(self, root: Path, *, follow: bool, kill_at: str | None = None):
        env = {k: v for k, v in os.environ.items() if k != "LOOPML_TEST_KILL_AT"}
        env["PYTHONFAULTHANDLER"] = "1"  # a hung ingest shows every thread's stack (see wait)
        if kill_at:
            env["LOOPML_TEST_KILL_AT"] = kill_at  # the ingest's own crash points
        args = ["ingest", "sensors", "--json", "-p", str(root)] + (["--follow"] if follow else [])
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOOPML, *args], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self._stdout: list[str] = []
        self._threads = [
            threading.Thread(target=self._drain, args=(stream, into), daemon=True)
            for stream, into in ((self.proc.stderr, self.log), (self.proc.stdout, self._stdout))
        ]
        for thread in self._threads:
            thread.start()
        _wait_for(lambda: any("subscribed" in line for line in self.log)
                  or self.proc.poll() is not None, what="loopml ingest to subscribe")
        assert self.proc.poll() is None, self.output()

    @staticmethod
    def _drain(stream, into: list[str]) -> None:  # noqa: ANN001
        for line in stream:
            into.append(line)

    def output(self) -> str:
        return "".join(self._stdout) + "".join(self.log)

    def wait(self, timeout: float = 120) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # hung: SIGABRT makes faulthandler print the stacks
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait(timeout=30)
            for thread in self._threads:
                thread.join(timeout=5)
            raise AssertionError(f"loopml ingest did not end within {timeout} s; its output "
                                 f"and every thread's stack:\n{self.output()}") from None
        for thread in self._threads:
            thread.join(timeout=5)
        return code

    def summary(self) -> dict[str, object]:
        [summary] = json.loads("".join(self._stdout))["sources"]
        return summary


def _wait_for(check, *, what: str, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _rows(root: Path, table: str) -> int:
    lake = Lake(root / ".loopml" / "lake")
    return lake.rows(table) if lake.exists(table) else 0


def _clean_ids(root: Path) -> list[int]:
    return sorted(Lake(root / ".loopml" / "lake").read("clean/sensors")["id"].to_list())


@pytest.mark.services
@pytest.mark.slow
@needs_broker
def test_a_burst_of_100000_messages_lands_once_each(
    tmp_path: Path, source: dict[str, object]
) -> None:
    """100,000 messages published in a burst while `loopml ingest --follow` runs: every one is
    in clean, none twice; SIGTERM ends it with exit 0 after committing its last partial batch."""
    n, batch = 100_000, 4_000
    remainder = 1_234  # the last batch, which only the SIGTERM flush commits
    root = make_project(tmp_path / "p", {**source, "batch_messages": batch, "batch_seconds": 3600})
    ingest = Ingest(root, follow=True)
    started = time.monotonic()
    publish(topic_of(source), messages(0, n + remainder))
    full = (n + remainder) // batch * batch
    _wait_for(lambda: _rows(root, "clean/sensors") >= full, what="the full batches", timeout=120)
    seconds = time.monotonic() - started
    time.sleep(1.0)  # the last messages reach the consumer (they were published before)
    assert _rows(root, "clean/sensors") == full  # the partial batch waits for its flush
    ingest.proc.send_signal(signal.SIGTERM)
    assert ingest.wait() == 0, ingest.output()
    assert ingest.summary()["rows_in"] == n + remainder
    assert _clean_ids(root) == list(range(n + remainder))  # each once
    # the flushed batch was acknowledged too: the broker has nothing left for this session
    config = MqttSource.model_validate({**source, "idle_s": 1.0})
    assert commit_all(config) == []
    print(f"\n{full:,} messages published and ingested in {seconds:.1f} s "
          f"({full / seconds:,.0f} messages/s)")


@pytest.mark.services
@pytest.mark.slow
@needs_broker
def test_an_ingest_killed_mid_stream_loses_nothing(
    tmp_path: Path, source: dict[str, object]
) -> None:
    """`loopml ingest --follow` SIGKILLed after a chunk's commit and before its acknowledgement,
    restarted and SIGKILLed again at an arbitrary point, then run to the end: each message is
    in clean exactly once.

    The first consumer is paused (SIGSTOP) while the publisher runs, so every message is with
    the broker before the first kill: in flight to the consumer's session (the reader's
    Receive Maximum allows 65535), none of it queued for an offline client, where Mosquitto
    keeps only max_queued_messages (1000). A paused consumer reads nothing from its socket,
    and then this Mosquitto (2.0.11) starts dropping at about 30,000 messages; 10,000 keep
    clear of that.
    """
    n = 10_000
    root = make_project(tmp_path / "p", {**source, "batch_messages": 1000, "batch_seconds": 1.0})
    first = Ingest(root, follow=True, kill_at="after_finish:2")
    first.proc.send_signal(signal.SIGSTOP)
    publish(topic_of(source), messages(0, n))
    first.proc.send_signal(signal.SIGCONT)
    assert first.wait() == -signal.SIGKILL, first.output()
    committed = _rows(root, "clean/sensors")
    assert committed == 2000  # two chunks committed, the second never acknowledged
    second = Ingest(root, follow=True)
    _wait_for(lambda: _rows(root, "clean/sensors") > committed + 1000, what="a commit or two")
    second.proc.kill()
    assert second.wait() == -signal.SIGKILL
    assert _rows(root, "clean/sensors") < n
    third = Ingest(root, follow=False)
    assert third.wait() == 0, third.output()
    assert _clean_ids(root) == list(range(n))
    assert _rows(root, "raw/sensors") > n  # the chunk committed but not acknowledged came again


class Broker:
    """A Mosquitto of the test's own on a free port, with persistence in a temporary folder.

    The tests stop and restart it, which they must not do to the system broker. ``user root``
    only matters when the tests run as root: mosquitto would switch to the user 'mosquitto',
    which cannot write the test's folder.
    """

    def __init__(self, tmp: Path):
        self.port = free_port()
        (tmp / "mosquitto-data").mkdir()
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser root\n"
            f"persistence true\npersistence_location {tmp / 'mosquitto-data'}/\n"
            f"log_dest file {tmp / 'mosquitto.log'}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["/usr/sbin/mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_for(lambda: _reachable("127.0.0.1", self.port), what="mosquitto to listen")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()  # mosquitto writes its persistence file on the way out
        self.proc.wait(timeout=10)


@pytest.mark.services
@pytest.mark.skipif(not Path("/usr/sbin/mosquitto").exists(), reason="no /usr/sbin/mosquitto")
def test_a_broker_restart_mid_stream_loses_nothing(
    tmp_path: Path, source: dict[str, object]
) -> None:
    """The broker goes down mid-stream and comes back: the reader reconnects with backoff and
    the broker (persistent) sends what was not acknowledged; a broker that stays down ends the
    reader with a SourceError, and nothing is lost either."""
    broker = Broker(tmp_path)
    broker.start()
    n = 3000
    fields = {**source, "port": broker.port, "batch_messages": 250, "batch_seconds": 0.5,
              "idle_s": 2.0, "retries": 4, "backoff_s": 0.1}
    config = MqttSource.model_validate(fields)
    clean: dict[int, int] = {}
    received = 0
    try:
        with online(fields) as subscribed:

            def publish_here() -> None:
                subscribed.wait(30)
                client = paho_client()
                client.connect("127.0.0.1", broker.port)
                client.loop_start()
                infos = [client.publish(topic_of(source), m, qos=1) for m in messages(0, n)]
                for info in infos:
                    info.wait_for_publish(timeout=60)
                client.disconnect()
                client.loop_stop()

            publisher = threading.Thread(target=publish_here)
            publisher.start()
            for number, chunk in enumerate(read_chunks(config), 1):
                if number == 1:
                    publisher.join()  # every message is with the broker
                    broker.stop()  # this chunk is committed; its acknowledgement is lost
                    time.sleep(0.3)
                    broker.start()
                ids = chunk.frame["id"].to_list()
                received += len(ids)
                clean.update(dict.fromkeys(ids, 1))
                chunk.on_commit()  # type: ignore[misc]
        assert sorted(clean) == list(range(n))
        assert received > n  # the first chunk came twice
        # a broker that does not come back: a clear error after the retries
        publish_more = paho_client()
        publish_more.connect("127.0.0.1", broker.port)
        publish_more.loop_start()
        publish_more.publish(topic_of(source), json.dumps({"id": n}), qos=1).wait_for_publish(10)
        publish_more.disconnect()
        publish_more.loop_stop()
        with pytest.raises(SourceError, match="cannot reach the MQTT broker") as info:
            for chunk in read_chunks(config, follow=True):
                broker.stop()
                assert chunk.frame["id"].to_list() == [n]
        assert "5 attempts" in str(info.value)
        broker.start()  # the uncommitted message is still there
        assert [c.frame["id"].to_list() for c in commit_all(config)] == [[n]]
    finally:
        if broker.proc is not None and broker.proc.poll() is None:
            broker.stop()
