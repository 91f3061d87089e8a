"""Test session settings: headless, loopback-only networking, a random ROS domain per session."""

import os
import random

# No display: PyBullet runs DIRECT, rendering goes through its TinyRenderer.
os.environ.pop("DISPLAY", None)
# Network safety: anything that opens DDS stays on loopback, in a domain of its own.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)   # deprecated in Jazzy (rcl warns); the range says it
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))
os.environ["CYCLONEDDS_URI"] = (
    "<CycloneDDS><Domain><General><Interfaces>"
    '<NetworkInterface address="127.0.0.1"/></Interfaces>'
    "<AllowMulticast>false</AllowMulticast></General></Domain></CycloneDDS>")


# Modules whose tests start processes (virtual bus, nodes, launchers, ros2, flake8) or run in
# real time: marked `slow`, so `pytest -m "not slow"` runs the pure tests alone.
SLOW_MODULES = {
    "test_bag", "test_cli_eval", "test_command_limit", "test_foxglove", "test_gym_bridge",
    "test_herkulex_driver",
    "test_herkulex_virtual_bus", "test_launcher", "test_lint", "test_ros2_launch", "test_sysid",
    "test_ros_two_process", "test_stack_eval", "test_stack_real", "test_stack_sim",
    "test_topic_tool", "test_training", "test_walk_policy", "test_navigator_stack",
    "test_one_leg_reach", "test_pgpe", "test_rllib", "test_ray_cluster",
}


def pytest_collection_modifyitems(config, items):
    import pytest
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
