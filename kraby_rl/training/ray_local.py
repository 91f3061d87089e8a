"""A Ray that stays on this machine's loopback, for EvoTorch's actors (and any other Ray use
of kraby_rl).

Ray, by default, replaces 127.0.0.1 by the host's own network address, listens on every
interface and talks to itself over that address, even with ``_node_ip_address=
"127.0.0.1"``. Its single-machine mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) binds and
connects every Ray process to 127.0.0.1, but Ray reads that variable once, when it is first
imported: so this module sets it on import, and every kraby module that imports Ray (or
EvoTorch, which imports Ray) imports this module first.
"""

from __future__ import annotations

import ipaddress
import os
import time

LOOPBACK_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""No usage reports; Ray's single-machine mode (every Ray process on 127.0.0.1)."""


def loopback_ray_env() -> None:
    """Set ``LOOPBACK_ENV`` in this process (Ray's processes inherit it), unless the user
    set those variables."""
    for key, value in LOOPBACK_ENV.items():
        os.environ.setdefault(key, value)


loopback_ray_env()


def start_ray(num_cpus: int, log=print) -> bool:
    """Start a local Ray on 127.0.0.1 with ``num_cpus``, dashboard off; False when one was
    already running in this process (then it is left alone).

    Raises:
        RuntimeError: Ray came up on a network address (it was imported before this module
            with the single-machine mode off); it is shut down again.
    """
    import ray
    if ray.is_initialized():
        return False
    t0 = time.time()
    # address "local": always a new Ray of our own, never one already running here
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    ip = ray.util.get_node_ip_address()
    if not ipaddress.ip_address(ip).is_loopback:
        ray.shutdown()
        raise RuntimeError(
            f"ray came up on {ip}, not on loopback: Ray was imported before "
            f"kraby_rl.training.ray_local, or RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="
            f"{os.environ.get('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER')!r} (expected '0')")
    log(f"ray: local, {num_cpus} CPUs on {ip} ({time.time() - t0:.1f} s to start)")
    return True
