"""The servo driver's idle wait between cycles and the e-stop (no bus, no DDS)."""

import threading
import time

from kraby_rl.nodes.servo_driver_node import ServoDriverNode


class _Bus:
    def __init__(self):
        self.torque_at = []

    def set_torque(self, mode):
        self.torque_at.append((mode, time.monotonic()))


def _idle_driver():
    """The node's bus-thread state without its ROS side: what ``_idle`` works on."""
    node = ServoDriverNode.__new__(ServoDriverNode)
    node.estop = threading.Event()
    node.torque = "on"
    node.p = {"estop_action": "brake"}
    node.bus = _Bus()
    return node


def test_an_estop_that_came_after_the_cycles_last_check_brakes_before_the_idle_wait():
    node = _idle_driver()
    node.estop.set()             # arrived between the jog and the end of the cycle
    t0 = time.monotonic()
    node._idle(0.3)
    assert node.bus.torque_at and node.bus.torque_at[0][0] == "brake"
    assert node.bus.torque_at[0][1] - t0 < 0.1, "the brake waited for the idle time"
    assert time.monotonic() - t0 >= 0.3          # then it still waits out the period


def test_the_idle_wait_ends_at_once_on_an_estop():
    node = _idle_driver()
    done = []
    waiter = threading.Thread(target=lambda: (node._idle(30.0), done.append(time.monotonic())))
    waiter.start()
    time.sleep(0.05)
    t_set = time.monotonic()
    node.estop.set()
    waiter.join(timeout=10)
    assert done and done[0] - t_set < 5.0
    assert node.bus.torque_at == []       # the loop's top brakes, not the wait


def test_no_wait_when_the_cycle_overran():
    node = _idle_driver()
    node.estop.set()
    t0 = time.monotonic()
    node._idle(-0.01)
    assert time.monotonic() - t0 < 0.1
