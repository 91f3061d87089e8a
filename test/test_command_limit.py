"""cmd_vel is limited to the command range the policy was trained on."""

import json
import os

import numpy as np
import pytest

from kraby_rl.core.command import CommandLimiter, command_ranges

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_walk_metadata_range_clamps_and_warns_once_per_excursion():
    with open(os.path.join(ROOT, "policies", "walk", "policy.json")) as fh:
        lim = CommandLimiter.from_metadata(json.load(fh))
    inside = lim([0.1, 0.0, 0.2])
    assert inside.limited == [] and not inside.new_excursion
    assert np.allclose(inside.command, [0.1, 0.0, 0.2])
    first = lim([0.5, 0.0, 0.0])
    assert first.new_excursion and first.limited == ["vx"]
    assert np.allclose(first.command, [0.15, 0.0, 0.0])
    assert "vx 0.5 m/s outside [-0.15, 0.15]" in lim.describe([0.5, 0, 0], first.limited)
    again = lim([1e6, -1e6, 0.0])       # still outside: no second warning
    assert not again.new_excursion and again.limited == ["vx", "vy"]
    assert np.allclose(again.command, [0.15, -0.1, 0.0])
    lim([0.0, 0.0, 0.0])                # back inside
    assert lim([0.0, 0.0, 9.0]).new_excursion
    assert lim.excursions == 2 and lim.limited_samples == 3


@pytest.mark.parametrize("ranges,match", [
    ({"vz": [0, 1]}, "unknown component 'vz'"),
    ({"vx": [0.2, 0.1]}, r"command_ranges\['vx'\]: expected finite low <= high"),
    ({"vx": "fast"}, r"expected \[low, high\]"),
])
def test_bad_ranges_are_named(ranges, match):
    with pytest.raises(ValueError, match=match):
        command_ranges(ranges)
