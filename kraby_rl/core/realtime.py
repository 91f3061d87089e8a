"""Scheduling priority for the threads that stand between a command and the servos.

`raise_priority()` gives the calling thread (Linux: scheduling is per thread) real-time
round-robin scheduling when the system permits it (root, CAP_SYS_NICE or an rtprio limit),
else a lower nice value, else leaves it alone, and says which it got, so a log line can
state it. The kernel's real-time throttling (sched_rt_runtime_us, 95 % by default) keeps a
runaway real-time thread from freezing the machine; these threads block in select/wait.
"""

from __future__ import annotations

import os
import threading


def raise_priority(rt_priority: int = 40, nice: int = -10) -> str:
    """Raise the calling thread's priority; returns what it got ("SCHED_RR 40", "nice -10",
    "normal (not permitted)")."""
    tid = threading.get_native_id()
    if rt_priority > 0 and hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(tid, os.SCHED_RR, os.sched_param(rt_priority))
            return f"SCHED_RR {rt_priority}"
        except (PermissionError, OSError):
            pass
    if nice < 0 and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
            return f"nice {nice}"
        except (PermissionError, OSError):
            pass
    return "normal (not permitted)"


def disabled_by_env() -> bool:
    """KRABY_REALTIME=0 leaves every thread at normal priority."""
    return os.environ.get("KRABY_REALTIME", "1").strip() in ("0", "false", "no", "off")


def take_priority(rt_priority: int) -> str:
    """``raise_priority(rt_priority)`` unless ``KRABY_REALTIME=0``; returns what it got."""
    return "normal (KRABY_REALTIME=0)" if disabled_by_env() else raise_priority(rt_priority)
