"""Serving side by side: loopml serve (1 and 2 workers), a minimal FastAPI app serving the same
pipeline, and ``mlflow models serve``, on one flights model in one run.

For each server, in its own process on a loopback port: single-record latency over HTTP
(sequential requests on one keep-alive connection after a warm-up: p50 and p99), the latency
of a batch of 1,000 records, and throughput at 16 concurrent connections (wrk, from Debian's
``wrk`` package, for ``--seconds``; non-2xx answers counted) with the server's CPU seconds per
request and its resident memory (all its processes). In this process: scoring one record
with ``predict_frame`` on the scikit-learn path and on the compiled form that serves (when
registration chose it), the floor under every HTTP figure.

The model is a flights project's champion trained by loopml (``serve_latency.build_project``)
unless ``--project`` names one. MLflow runs from an environment of its own under
``.bench-peers/mlflow`` (``bench/peers/mlflow.txt`` plus this checkout of loopml, to unpickle
the pipeline), made on first use. Then where the time of one record goes, part by part, in
process and over HTTP (``wrk -c1``), for the demo's champion (trained here unless
``--demo-project``) and the flights model (``bench/serve_breakdown.py``). Writes
``bench/results/serve.json`` and ``serve.md``.

    .venv/bin/python bench/serve.py [--project DIR] [--seconds 10] [--skip mlflow]
    .venv/bin/python bench/serve.py --in-process-only --project DIR --demo-project DIR
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import serve_breakdown  # noqa: E402  (bench/serve_breakdown.py: where the time goes)
import serve_latency  # noqa: E402  (bench/serve_latency.py: the flights project)

RESULTS = HERE / "results" / "serve.json"
PEERS = HERE.parent / ".bench-peers"
CONNECTIONS = 16
BATCH = 1000


# ---- servers -------------------------------------------------------------------------------


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(server: subprocess.Popen, url: str, log: Path, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{url} exited before it answered:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def start(kind: str, project: Path, bundle_dir: Path, work: Path) -> tuple[subprocess.Popen, str]:
    port = _port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    if kind.startswith("loopml"):
        workers = kind.rsplit("-", 1)[-1]
        args = [sys.executable, "-m", "loopml", "serve", "--project", str(project),
                "--port", str(port), "--workers", workers]
        env["LOOPML_SERVING__LOG_FORMAT"] = "text"
    elif kind == "fastapi":
        args = [sys.executable, str(HERE / "_serve_peers.py"), "fastapi", str(bundle_dir),
                str(port)]
    else:
        python = mlflow_python()
        model = work / "mlflow-model"
        if not model.exists():
            subprocess.run([str(python), str(HERE / "_serve_peers.py"), "mlflow-save",
                            str(bundle_dir), str(model)], check=True, env=env)
        args = [str(python.parent / "mlflow"), "models", "serve", "-m", str(model), "-p",
                str(port), "-h", "127.0.0.1", "--env-manager", "local"]
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"  # its uvicorn
    log = work / f"{kind}.log"
    with log.open("w") as out:  # a pipe nobody reads would fill and stall the server
        server = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait(server, url, log)
    return server, url


def stop(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def mlflow_python() -> Path:
    """The MLflow peer's interpreter, its environment made on first use."""
    venv = PEERS / "mlflow"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "mlflow").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r",
                        str(HERE / "peers" / "mlflow.txt"), str(HERE.parent)], check=True)
    return python


# ---- what a request looks like to each server ------------------------------------------------


def body(kind: str, records: list[dict]) -> bytes:
    if kind == "mlflow":
        return json.dumps({"dataframe_records": records}).encode()
    return json.dumps({"records": records}).encode()


def path_of(kind: str) -> str:
    return "/invocations" if kind == "mlflow" else "/predict"


# ---- measuring -----------------------------------------------------------------------------


def latency(url: str, path: str, bodies: list[bytes], warmup: int) -> dict[str, float]:
    import httpx

    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=60) as client:
        for b in bodies[:warmup]:
            client.post(path, content=b, headers=headers).raise_for_status()
        times = []
        for b in bodies[warmup:]:
            began = time.perf_counter()
            answer = client.post(path, content=b, headers=headers)
            times.append(time.perf_counter() - began)
            answer.raise_for_status()
    ms = np.asarray(times) * 1000
    return {"requests": len(times), "p50_ms": round(float(np.median(ms)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def _processes(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True)
    children: dict[int, list[int]] = {}
    for line in out.stdout.splitlines():
        child, parent = (int(x) for x in line.split())
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _cpu_and_rss(pid: int) -> tuple[float, float]:
    """CPU seconds and resident MB of ``pid`` and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu = rss = 0.0
    for p in _processes(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        cpu += (int(fields[11]) + int(fields[12])) / tick
        rss += next(int(line.split()[1]) for line in status.splitlines()
                    if line.startswith("VmRSS")) / 1024
    return cpu, rss


def throughput(url: str, path: str, one: bytes, server: subprocess.Popen, seconds: int,
               work: Path) -> dict[str, float]:
    """wrk with ``CONNECTIONS`` connections for ``seconds`` (a request may take 30 s before
    wrk counts it as an error); the server's CPU per request."""
    script = work / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(one.decode())}\n"
    )
    cpu_before, _ = _cpu_and_rss(server.pid)
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--timeout", "30s",
         "--latency", "-s",
         str(script), f"{url}{path}"], capture_output=True, text=True, check=True,
    ).stdout
    cpu_after, rss = _cpu_and_rss(server.pid)
    requests = int(next(line for line in out.splitlines() if "requests in" in line).split()[0])
    errors = 0
    for line in out.splitlines():
        if "Non-2xx" in line or "Socket errors" in line:
            errors += sum(int(x) for x in line.replace(",", " ").split() if x.isdigit())
    return {"requests_per_s": round(requests / seconds, 1), "requests": requests,
            "errors": errors, "connections": CONNECTIONS,
            "server_cpu_ms_per_request": round((cpu_after - cpu_before) * 1000 / max(requests, 1),
                                               3),
            "server_rss_mb": round(rss, 1)}


def in_process(bundle, frame, warmup: int) -> dict[str, float]:
    from loopml.serve import predict_frame

    singles = [frame.slice(i, 1) for i in range(frame.height)]
    for one in singles[:warmup]:
        predict_frame(bundle, one)
    times = []
    for one in singles[warmup:]:
        began = time.perf_counter()
        predict_frame(bundle, one)
        times.append(time.perf_counter() - began)
    us = np.asarray(times) * 1e6
    import polars as pl

    batch = pl.concat([frame] * (BATCH // frame.height + 1)).head(BATCH)  # BATCH rows
    began = time.perf_counter()
    for _ in range(10):
        predict_frame(bundle, batch)
    return {"p50_us": round(float(np.median(us)), 1),
            "p99_us": round(float(np.percentile(us, 99)), 1),
            "batch_1000_ms": round((time.perf_counter() - began) * 100, 2)}


# ---- the run -------------------------------------------------------------------------------


def table(result: dict) -> str:
    rows = ["| server | single p50 ms | single p99 ms | batch of 1,000 p50 ms | req/s at 16 conn "
            "| errors | server CPU ms/req | server RSS MB |", "|---|---|---|---|---|---|---|---|"]
    for name, r in result["servers"].items():
        if "error" in r:
            rows.append(f"| {name} | failed: {r['error'][:80]} | | | | | | |")
            continue
        s, b, t = r["single"], r["batch"], r["throughput"]
        if r.get("from_an_earlier_run"):
            name = f"{name} (earlier run)"
        rows.append(f"| {name} | {s['p50_ms']} | {s['p99_ms']} | {b['p50_ms']} | "
                    f"{t['requests_per_s']} | {t['errors']} | {t['server_cpu_ms_per_request']} | "
                    f"{t['server_rss_mb']} |")
    p = result["in_process"]
    return "\n".join([
        f"# Serving at one machine ({result['machine']['cpus']} cores), one run",
        "", f"Model: {result['model']}", "", *rows, "",
        f"Served in its {result['serving_form']['form']} form: "
        f"{result['serving_form']['reason']}.", "",
        f"In process (`predict_frame`, scikit-learn path): one record p50 {p['p50_us']} µs, "
        f"p99 {p['p99_us']} µs; a batch of 1,000 {p['batch_1000_ms']} ms.", *_compiled_line(result),
        "",
        *[f"- {k}: {v}" for k, v in result["ratios"].items()], "",
        *serve_breakdown.markdown(result.get("breakdown", {}))])


def _compiled_line(result: dict) -> list[str]:
    c = result.get("in_process_compiled")
    if c is None:
        return []
    return [f"In process, compiled form: one record p50 {c['p50_us']} µs, p99 {c['p99_us']} µs; "
            f"a batch of 1,000 {c['batch_1000_ms']} ms."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="serve this project's champion")
    parser.add_argument("--budget", type=int, default=20, help="search seconds when building")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per server")
    parser.add_argument("--skip", action="append", default=[],
                        help="leave a server out: loopml-1, loopml-2, fastapi, mlflow")
    parser.add_argument("--in-process-only", action="store_true",
                        help="no servers: in-process figures and breakdowns only (the servers' "
                             "figures of the last full run are kept)")
    parser.add_argument("--demo-project", type=Path,
                        help="the demo project for the breakdown (default: trained here)")
    parser.add_argument("--breakdown-seconds", type=int, default=8,
                        help="wrk -c1 duration for the HTTP breakdown")
    args = parser.parse_args()
    if args.in_process_only:
        args.skip = ["loopml-1", "loopml-2", "fastapi", "mlflow"]
    elif shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")

    from loopml.pipeline import Project
    from loopml.pipeline._context import serving_bundle

    work = Path(tempfile.mkdtemp(prefix="loopml-bench-serve-"))
    try:
        project = args.project or serve_latency.build_project(work / "flights", args.budget)
        rows, bundle, model = serve_latency.sample_rows(project, args.requests + args.warmup)
        with Project(project) as p:
            mv = p.catalog.model_version(p.model_name, "champion")
            bundle_dir = Path(p.catalog.fetch(mv.name, mv.version))
        records = [serve_latency.json_record(r) for r in rows.to_dicts()]
        batch = records[:BATCH] * (BATCH // len(records) + 1)
        servers: dict[str, dict] = {}
        for kind in ("loopml-1", "loopml-2", "fastapi", "mlflow"):
            if kind in args.skip:
                continue
            flavour = "mlflow" if kind == "mlflow" else "loopml"
            print(f"{kind} ...", flush=True)
            try:
                server, url = start(kind, project, bundle_dir, work)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                servers[kind] = {"error": str(exc).strip().splitlines()[-1]}
                continue
            try:
                path = path_of(flavour)
                single = latency(url, path, [body(flavour, [r]) for r in records], args.warmup)
                many = latency(url, path, [body(flavour, batch[:BATCH])] * 25, 5)
                rate = throughput(url, path, body(flavour, records[:1]), server, args.seconds,
                                  work)
                servers[kind] = {"single": single, "batch": many, "throughput": rate}
                print(f"  {single} {many} {rate}", flush=True)
            finally:
                stop(server)
        floor = in_process(bundle, rows, args.warmup)
        fast_bundle = serving_bundle(bundle_dir)
        fast = in_process(fast_bundle, rows, args.warmup) if (
            fast_bundle.serving_form == "compiled") else None
        print("breakdown ...", flush=True)
        demo = args.demo_project or serve_breakdown.build_demo(work / "demo")
        seconds = None if args.in_process_only else args.breakdown_seconds
        parts = {}
        for name, folder in (("demo", demo), ("flights", project)):
            sample, _, _ = serve_latency.sample_rows(folder, 100)
            parts[name] = serve_breakdown.breakdown(
                folder, [serve_latency.json_record(r) for r in sample.to_dicts()],
                http_seconds=seconds, work=work,
                start=lambda f: start("loopml-1", f, bundle_dir, work), stop=stop)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ratios = {}
    if fast is not None:
        ratios["in-process one record, scikit-learn p50 / compiled p50"] = round(
            floor["p50_us"] / fast["p50_us"], 1)
        ratios["in-process batch of 1,000, scikit-learn / compiled"] = round(
            floor["batch_1000_ms"] / fast["batch_1000_ms"], 1)
    if "mlflow" in servers and "throughput" in servers["mlflow"] and "loopml-1" in servers:
        ml = servers["mlflow"]["throughput"]["requests_per_s"]
        for kind in ("loopml-1", "loopml-2"):
            if kind in servers and "throughput" in servers[kind]:
                ratios[f"{kind} throughput / mlflow"] = round(
                    servers[kind]["throughput"]["requests_per_s"] / ml, 2)
    if RESULTS.exists():  # a server left out keeps its figures from the last run that had it
        last = json.loads(RESULTS.read_text())
        for kind, found in last.get("servers", {}).items():
            if kind in args.skip and kind not in servers:
                servers[kind] = {**found, "from_an_earlier_run": True}
        if args.in_process_only:
            ratios.update({k: v for k, v in last.get("ratios", {}).items() if "throughput" in k})
    result = {
        "benchmark": "serve", "model": f"{model} ({type(bundle.model).__name__})",
        "servers": servers, "in_process": floor, "in_process_compiled": fast,
        "breakdown": parts,
        "serving_form": {"form": fast_bundle.serving_form, "reason": fast_bundle.serving_reason},
        "ratios": ratios,
        "targets": {"single_p50_ms": 1.5, "single_p99_ms": 3.0,
                    "throughput_vs_mlflow": 15, "in_process_p50_us": 50},
        "measured": "each server in its own process on 127.0.0.1; wrk -t1 -c16 on the same "
                    "2 cores; loopml serve with its prediction log on",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_1min": round(os.getloadavg()[0], 2)},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text(table(result))
    print(table(result))


if __name__ == "__main__":
    main()
