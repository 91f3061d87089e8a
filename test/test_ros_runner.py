"""run_node's exit paths: a stop that lands inside the middleware's C++ is still a clean stop."""

import pytest

from kraby_rl import ros
from kraby_rl.ros import runner


class _Node:
    destroyed = 0

    def destroy_node(self):
        _Node.destroyed += 1


@pytest.fixture
def fake_spin(monkeypatch):
    """run_node on a live context whose spin fails the way rclpy's take_message does when
    a KeyboardInterrupt is raised inside its pybind11 conversion."""
    monkeypatch.setattr(runner, "_init", lambda args: ros.init(args=args))
    monkeypatch.setattr(runner, "_ignore_interrupts", lambda: None)

    def spin(node):
        assert ros.ok()             # the context is still up: ok() alone cannot tell
        raise RuntimeError("Unable to convert call argument '0' of type 'object' to "
                           "Python object")
    monkeypatch.setattr(runner, "spin", spin)
    _Node.destroyed = 0
    yield
    ros.try_shutdown()


def test_runtime_error_after_a_stop_request_is_a_clean_stop(fake_spin, monkeypatch):
    monkeypatch.setattr(runner, "_STOP_REQUESTED", True)
    assert runner.run_node(_Node, args=["n"]) == 0
    assert _Node.destroyed == 1


def test_runtime_error_while_running_is_a_failure_and_still_cleans_up(fake_spin, monkeypatch):
    monkeypatch.setattr(runner, "_STOP_REQUESTED", False)
    with pytest.raises(RuntimeError, match="Unable to convert"):
        runner.run_node(_Node, args=["n"])
    assert _Node.destroyed == 1
    assert not ros.ok()
