"""Calibration files: the 18 servos' calibration differences (RAM 47) [counts], one leg per
row, as ``kraby servo calibrate`` writes them and ``servo_driver`` reads them."""

from __future__ import annotations

import time

import numpy as np

from kraby_rl.core import joints as J


class CalibrationError(ValueError):
    """A calibration file that cannot be read or does not hold 18 valid differences."""


def load_calibration(path: str | None):
    """(18,) calibration differences [counts] from a YAML file, or the joint table's."""
    if path is None:
        return J.CALIBRATION.copy()
    import yaml
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except OSError as exc:
        raise CalibrationError(f"cannot read calibration file {path!r}: {exc}") from None
    rows = doc.get("calibration") if isinstance(doc, dict) else None
    flat = [v for row in rows for v in (row if isinstance(row, list) else [row])] \
        if isinstance(rows, list) else []
    if len(flat) != J.NUM_JOINTS or not all(isinstance(v, int) and -128 <= v <= 127
                                            for v in flat):
        raise CalibrationError(f"{path}: 'calibration' must be 6 rows of 3 integers in "
                               f"-128..127 [counts], one leg per row in the order "
                               f"{', '.join(J.LEG_PREFIXES)}; found {rows!r}")
    return np.array(flat, dtype=np.int64)


def calibration_yaml(cal, port: str) -> str:
    """A calibration file: one leg per line, in counts, with the joint names."""
    lines = ["# Herkulex calibration differences (RAM 47) [counts], written by",
             f"# `kraby servo calibrate --port {port}` on {time.strftime('%Y-%m-%d %H:%M')}.",
             "# One leg per line: coxa, femur, tibia.", "calibration:"]
    for leg, prefix in enumerate(J.LEG_PREFIXES):
        row = ", ".join(f"{int(c):4d}" for c in cal[3 * leg:3 * leg + 3])
        lines.append(f"  - [{row}]   # {prefix}")
    return "\n".join(lines) + "\n"
