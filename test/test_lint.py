"""flake8 at the ament line length (99 columns), as ament_flake8 would check it."""

import os
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def test_flake8():
    r = subprocess.run([sys.executable, "-m", "flake8", "--max-line-length", "99",
                        "kraby_rl", "test", "setup.py"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
