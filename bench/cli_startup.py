"""Start-up time of ``loopml --help`` and ``import loopml``, against the bare interpreter.

The target is ``loopml --help`` under 0.3 s. A subcommand's ``--help`` costs more because
Typer builds pydantic adapters for its parameters (about 0.2 s of imports).

Each command runs ``--repeat`` times in a fresh process; the median wall time is reported with
its ratio to ``python -c pass`` measured in the same run. Writes
``bench/results/cli_startup.json``.

    .venv/bin/python bench/cli_startup.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "cli_startup.json"
LOOPML = str(Path(sys.executable).with_name("loopml"))


def timed(cmd: list[str], repeat: int) -> dict[str, float]:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return {
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    floor = timed([sys.executable, "-c", "pass"], args.repeat)
    commands = {
        "loopml --help": [LOOPML, "--help"],
        "import loopml": [sys.executable, "-c", "import loopml"],
        "loopml init --help": [LOOPML, "init", "--help"],
    }
    results = {name: timed(cmd, args.repeat) for name, cmd in commands.items()}
    for r in results.values():
        r["ratio_to_python"] = round(r["median_s"] / floor["median_s"], 2)
    out = {
        "benchmark": "cli_startup",
        "python -c pass": floor,
        **results,
        "target_s": 0.3,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for name, r in [("python -c pass", floor), *results.items()]:
        extra = f"  ({r['ratio_to_python']}x python)" if "ratio_to_python" in r else ""
        print(f"{name:22s} median {r['median_s'] * 1000:6.1f} ms{extra}")
    if results["loopml --help"]["median_s"] > 0.3:
        raise SystemExit("'loopml --help' is over its 0.3 s target")


if __name__ == "__main__":
    main()
