"""Where the package's data lives, and finding things in it: configs, policies, the URDF.

One lookup for every caller (CLI, nodes, launch files, training): the source tree of an
editable install first, else the ament share directory of a colcon/ROS install, else the
``share/kraby_rl`` a pip install writes under its prefix.
"""

from __future__ import annotations

import os
import sys

PACKAGE = "kraby_rl"


def _share() -> str:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if all(os.path.isdir(os.path.join(here, d)) for d in ("config", "policies")):
        return here
    try:
        from ament_index_python.packages import get_package_share_directory
        return get_package_share_directory(PACKAGE)
    except Exception:  # noqa: B902 - no ROS 2, or the package is not in its index
        return os.path.join(sys.prefix, "share", PACKAGE)


SHARE = _share()


def share_path(*parts: str) -> str:
    return os.path.join(SHARE, *parts)


def find_config(name: str) -> str:
    """A config file: ``name`` as a path if it exists, else ``config/<name>`` in the share.

    Raises:
        FileNotFoundError: naming both places looked at.
    """
    if os.path.exists(name):
        return name
    cand = share_path("config", name)
    if os.path.exists(cand):
        return cand
    raise FileNotFoundError(f"config {name!r} not found: neither a file nor in "
                            f"{share_path('config')} ({', '.join(shipped_configs())})")


def shipped_configs() -> list:
    root = share_path("config")
    return sorted(f for f in (os.listdir(root) if os.path.isdir(root) else [])
                  if f.endswith(".yaml"))


def resolve_policy(value: str) -> str:
    """An export directory from a path or a shipped policy's name (raises ValueError)."""
    for cand in (value, share_path("policies", value)):
        if cand and os.path.exists(os.path.join(cand, "policy.json")):
            return cand
    root = share_path("policies")
    shipped = sorted(d for d in (os.listdir(root) if os.path.isdir(root) else [])
                     if os.path.exists(os.path.join(root, d, "policy.json")))
    raise ValueError(f"parameter 'policy': expected an export directory (policy.json + "
                     f"policy.npz) or one of the shipped policies {shipped}, found {value!r}")
