"""What every benchmark prints about the run itself: the commit measured, and how much of the
machine it had (the development machine is a shared virtual machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def commit() -> str:
    """The commit measured, with "+changes" when tracked files differ from it."""

    def git(*command: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *command], capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" +changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def header(script: str) -> str:
    """The first line of a benchmark's output: the commit and the exact command."""
    return f"commit {commit()}; python {script} {' '.join(sys.argv[1:])}".rstrip()


class StealMeter:
    """The share of CPU time the hypervisor gave to other guests while a part ran (``st`` in
    vmstat), and the load average at its end: on a shared virtual machine, latencies measured
    under high steal, or with more runnable processes than cores, are inflated."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except OSError:
            return 0, 0
        ticks = [int(value) for value in fields[:8]]
        return ticks[7] if len(ticks) > 7 else 0, sum(ticks)

    def share(self) -> str:
        steal, total = (now - then for now, then in zip(self._read(), self._start, strict=True))
        steal_share = f"{100 * steal / total:.0f}%" if total else "unknown"
        return f"{steal_share}, load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
