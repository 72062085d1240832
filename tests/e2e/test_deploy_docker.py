"""``loopml deploy docker``: the build context serves the champion with a PostgreSQL catalog.

There is no Docker engine on every machine (``docker build`` needs one), so the test runs what
the image would run: the Dockerfile's own ENV and ENTRYPOINT, read from the file, with the
image's paths mapped onto the context folder, the catalog on a fresh database of the local
PostgreSQL server as ``compose.yaml`` sets it. Where ``docker info`` answers, it builds and
runs the image too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import polars as pl
import pytest
import yaml

from loopml.pipeline import Project
from tests.unit.serve.test_serve_process import _free_port, _wait_until_up

pytestmark = pytest.mark.slow


def test_the_docker_context_serves_the_champion(cli, penguins_csv: Path, tmp_path: Path,
                                                postgres_url: str, monkeypatch) -> None:
    """The context holds a Dockerfile, a compose file with PostgreSQL, pinned requirements and
    the champion's verified files; its entrypoint installs the bundle into an empty catalog
    (again at the next start without a second version) and serves the same predictions as
    the project; a bundle whose bytes changed is refused."""
    assert cli("init", "penguins.csv", "--target", "species")[0] == 0
    code, out = cli("run", "--time-budget", "5")
    assert code == 0, out
    code, out = cli("deploy", "docker")
    assert code == 0, out
    ctx = tmp_path / "deploy" / "docker"
    assert "docker build -t loopml-" in out and str(ctx) in out.replace("\n", "")

    dockerfile = (ctx / "Dockerfile").read_text()
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim" in dockerfile
    assert re.search(r"^USER 10001$", dockerfile, re.MULTILINE) and "HEALTHCHECK" in dockerfile
    compose = yaml.safe_load((ctx / "compose.yaml").read_text())
    catalog, serve = compose["services"]["catalog"], compose["services"]["serve"]
    assert catalog["image"].startswith("postgres:") and "healthcheck" in catalog
    assert serve["depends_on"]["catalog"]["condition"] == "service_healthy"
    assert serve["build"] == "." and serve["volumes"] == ["data:/data"]
    assert serve["environment"]["LOOPML_STORAGE__CATALOG_URL"].startswith(
        "postgresql+psycopg://loopml:")
    pins = dict(line.split("==") for line in (ctx / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    for dist in ("polars", "deltalake", "scikit-learn", "lightgbm", "xgboost-cpu", "SQLAlchemy",
                 "psycopg-binary", "uvicorn", "fastapi"):
        assert pins[dist] == version(dist), dist
    assert not {"pytest", "hypothesis", "loopml"} & set(pins)

    with Project(tmp_path) as proj:
        champion = proj.catalog.model_version(proj.model_name, "champion")
        registered = proj.catalog.files_of(champion.name, champion.version)
    record = json.loads((ctx / "model" / "model.json").read_text())
    assert (record["name"], record["version"]) == (champion.name, champion.version)
    assert {p: (f["sha256"], f["size"]) for p, f in record["files"].items()} == registered

    # the image's start-up, without the engine
    port = _free_port()
    env, entrypoint = _container(ctx, tmp_path / "data", port)
    env["LOOPML_STORAGE__CATALOG_URL"] = postgres_url  # what compose.yaml sets
    penguins = pl.read_csv(penguins_csv, null_values="NA")
    records = penguins.drop("species").head(25).to_dicts()
    output = tmp_path / "container.log"
    with output.open("w") as log:
        server = subprocess.Popen(entrypoint, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  cwd=tmp_path / "data")
    try:
        _wait_until_up(f"http://127.0.0.1:{port}", server, timeout=120,
                       output=output.read_text)
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"records": records},
                            timeout=60)
        assert answer.status_code == 200, answer.text
        served = answer.json()["predictions"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    text = output.read_text()
    assert f"Installed {champion.name}@1 (champion)" in text, text[-3000:]
    assert "Traceback" not in text

    code, out = cli("predict", "penguins.csv", "-o", "scored.parquet")
    assert code == 0, out
    assert served == pl.read_parquet(tmp_path / "scored.parquet")["_prediction"].head(25).to_list()

    # the next start installs nothing new
    again = subprocess.run(entrypoint[:2] + [entrypoint[2].split(" && exec ")[0]], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    for key, value in env.items():  # the container's settings, to read its catalog
        if key.startswith("LOOPML_"):
            monkeypatch.setenv(key, value)
    with Project(ctx / "project") as installed:
        assert [v.version for v in installed.catalog.model_versions(champion.name)] == [1]

    # a bundle changed after it was written is refused before anything is registered
    tampered = tmp_path / "tampered"
    shutil.copytree(ctx / "model", tampered)
    target = next(p for p in sorted((tampered / "files").rglob("*")) if p.is_file())
    target.write_bytes(target.read_bytes() + b" ")
    code, out = cli("deploy", "install", str(tampered), "--alias", "champion")
    assert code != 0 and "sha256" in out and target.name in out, out

    if _docker_works():  # an engine is there: build and run the real image
        image, port = f"loopml-test-{os.getpid()}", _free_port()
        subprocess.run(["docker", "build", "-t", image, str(ctx)], check=True, timeout=1800)
        run = subprocess.run(["docker", "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8000",
                              image], capture_output=True, text=True, check=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(1)
            answer = httpx.post(f"{url}/predict", json={"records": records}, timeout=60)
            assert answer.json()["predictions"] == served
        finally:
            subprocess.run(["docker", "stop", run.stdout.strip()], check=False)
            subprocess.run(["docker", "image", "rm", "-f", image], check=False)


def _container(ctx: Path, data: Path, port: int) -> tuple[dict[str, str], list[str]]:
    """The Dockerfile's ENV (in order) and ENTRYPOINT, with the image's folders mapped onto
    the context and ``data``, and its interpreter onto this one."""
    text = (ctx / "Dockerfile").read_text().replace("\\\n", " ")
    paths = {"/srv/lib": str(ctx), "/srv/project": str(ctx / "project"),
             "/srv/model": str(ctx / "model"), "/data": str(data)}

    def mapped(value: str) -> str:
        for image_path, here in paths.items():
            value = value.replace(image_path, here)
        return value

    env = {"PATH": os.environ["PATH"], "HOME": str(data)}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for key, value in re.findall(r"(\w+)=(\S+)", line[4:]):
                env[key] = mapped(value)
    env["LOOPML_SERVING__HOST"], env["LOOPML_SERVING__PORT"] = "127.0.0.1", str(port)
    entry = json.loads(next(line[len("ENTRYPOINT "):] for line in text.splitlines()
                            if line.startswith("ENTRYPOINT ")))
    entry = [mapped(part).replace("python -m", f"{sys.executable} -m") for part in entry]
    data.mkdir(parents=True)
    return env, entry


def _docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
