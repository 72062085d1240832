"""Peers that cannot share loopml's environment run from one of their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
PEERS = HERE.parent / ".bench-peers"


def peer_python(name: str) -> Path:
    """The Python of the peer environment ``.bench-peers/<name>``, created from
    ``bench/peers/<name>.txt`` if missing."""
    venv = PEERS / name
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r",
                        str(HERE / "peers" / f"{name}.txt")], check=True)  # fmt: skip
    return python
