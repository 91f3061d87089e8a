"""Helpers for tests that run kraby commands or a Python snippet in another process."""

import os
import signal
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

_BLOCKER = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in {blocked!r}:\n"
    "            raise ImportError('blocked: ' + name)\n"
    "sys.meta_path.insert(0, Block())\n")


def run_without(blocked, code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter in which importing any of the top-level packages
    ``blocked`` (e.g. torch) fails; returns the completed process (text output)."""
    script = _BLOCKER.format(blocked=tuple(blocked)) + code
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def kraby(*args) -> subprocess.Popen:
    """``kraby ARGS`` in its own session (so that ``kill_group`` stops what it starts),
    stdout and stderr together as text."""
    return subprocess.Popen([sys.executable, "-m", "kraby_rl.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a process started by ``kraby`` and everything in its session (a local Ray
    included), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def kill_at_first_checkpoint(proc: subprocess.Popen, run_dir: str, timeout: float = 300) -> int:
    """Wait for a training run's first checkpoint marker, then ``kill_group`` the run
    (kill -9 mid-run); returns the marker's step count."""
    import json
    import time
    marker = os.path.join(run_dir, "checkpoints", "latest.json")
    try:
        deadline = time.monotonic() + timeout
        while not os.path.exists(marker) and time.monotonic() < deadline \
                and proc.poll() is None:
            time.sleep(0.2)
        assert os.path.exists(marker), proc.stdout.read() if proc.poll() is not None else ""
    finally:
        kill_group(proc)
    with open(marker) as fh:
        return json.load(fh)["timesteps"]
