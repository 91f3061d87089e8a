"""Each node's config/<node>.yaml lists exactly its parameters, with its defaults."""

import os

import pytest
import yaml

from kraby_rl.nodes import (policy_node, safety_shield_node, servo_driver_node, sim_node,
                            state_estimator_node)
from kraby_rl.ros.embedded.arguments import parse_arguments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("module,name", [(servo_driver_node, "servo_driver"),
                                         (safety_shield_node, "safety_shield"),
                                         (sim_node, "sim_node"),
                                         (state_estimator_node, "state_estimator"),
                                         (policy_node, "policy_node")])
def test_config_file_matches_the_declared_parameters(module, name):
    path = os.path.join(ROOT, "config", f"{name}.yaml")
    with open(path) as f:
        (section,) = yaml.safe_load(f).values()
    in_file = section["ros__parameters"]
    declared = {n: default for n, default, _description in module.PARAMETERS}
    assert in_file == declared
    assert all(description for _n, _d, description in module.PARAMETERS)
    # the file's section applies to the node in any namespace
    overrides = parse_arguments(["x", "--ros-args", "--params-file", path])
    assert set(overrides.parameters_for(f"/kraby/{name}")) == set(declared)
    assert overrides.parameters_for("/kraby/other_node") == {}


def test_every_executable_is_a_console_script_and_a_node_module():
    import importlib
    import re

    from kraby_rl.stack.description import EXECUTABLES
    with open(os.path.join(ROOT, "setup.py")) as f:
        scripts = dict(re.findall(r'"(\w+) = (kraby_rl\.(?:nodes|training)\.\w+):main"', f.read()))
    assert scripts == EXECUTABLES
    for module in EXECUTABLES.values():
        assert callable(importlib.import_module(module).main)


def test_a_misspelled_parameter_is_warned_with_the_closest_valid_name(tmp_path, capfd):
    from kraby_rl import ros
    from kraby_rl.nodes import common as C
    params = tmp_path / "servo_driver.yaml"
    params.write_text("/**/servo_driver:\n  ros__parameters:\n    rate_hzz: 25.0\n"
                      "    port: /dev/ttyUSB1\n    gain_xyz: 3\n")
    ros.init(args=["test", "--ros-args", "--params-file", str(params),
                   "-p", "use_sim_time:=false"])
    try:
        node = ros.Node("servo_driver")
        values = C.declare(node, servo_driver_node.PARAMETERS)
        node.destroy_node()
    finally:
        ros.shutdown()
    assert values["port"] == "/dev/ttyUSB1" and values["rate_hz"] == 50.0
    err = capfd.readouterr().err
    assert ("parameter 'rate_hzz' is not a parameter of servo_driver and is ignored; "
            "did you mean 'rate_hz'?") in err
    assert "parameter 'gain_xyz' is not a parameter of servo_driver and is ignored; " \
           "its parameters are: baudrate, calibration_file" in err
    assert "'port' is not" not in err and "use_sim_time" not in err
