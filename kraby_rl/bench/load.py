"""`--load N`: N CPU-burning processes for the length of a measurement, then stopped.

Each hog is a plain Python busy loop at normal priority in a process of its own, started
by this bench and ended by its PID (also when the measurement fails).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys

HOG = "while True:\n    pass\n"


@contextlib.contextmanager
def cpu_load(n: int):
    if n < 0:
        raise ValueError(f"--load: expected a number of hog processes >= 0, found {n}")
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(n)]
    try:
        yield [h.pid for h in hogs]
    finally:
        for h in hogs:
            h.kill()
        for h in hogs:
            h.wait()
