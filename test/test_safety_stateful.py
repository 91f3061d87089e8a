"""The shield logic driven by hypothesis with arbitrary event orders: it never raises, and a
latched stop is only ever left through a reset that was valid when it was made."""

import math

import numpy as np
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kraby_rl.core import joints as J
from kraby_rl.core.safety import SafetyShield, ShieldLimits

NAMES = list(J.JOINT_NAMES)
finite = st.floats(-3.0, 3.0, allow_nan=False)
anything = st.one_of(finite, st.just(math.nan), st.just(math.inf), st.just(-math.inf))


class ShieldMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.shield = SafetyShield(ShieldLimits(heartbeat_timeout_s=0.0))
        self.now = 0.0
        self.latched = False          # what the model expects: a stop that needs a reset
        self.reset_ok = False         # the last reset() call released it

    @rule(dt=st.floats(-0.5, 2.0, allow_nan=False))
    def time_passes(self, dt):
        # time can jump forward a lot, or backwards (a clock set, sim time restarted)
        self.now += dt

    @rule()
    def estop(self):
        self.shield.on_estop(True, self.now)
        self.latched = True

    @rule()
    def estop_released(self):
        self.shield.on_estop(False, self.now)

    @rule(q=st.lists(anything, min_size=0, max_size=19))
    def target(self, q):
        names = NAMES[:len(q)] if len(q) <= 18 else NAMES + ["tail"]
        self.shield.on_target(names, q, self.now)

    @rule(q=st.lists(anything, min_size=18, max_size=18))
    def joint_state(self, q):
        self.shield.on_joint_state(NAMES, q, self.now)

    @rule(tilt=anything)
    def tilt(self, tilt):
        self.shield.on_tilt(tilt, self.now)

    @rule(faults=st.dictionaries(st.sampled_from(NAMES), st.sampled_from(
        ["overload", "driver fault"]), max_size=3))
    def servo_faults(self, faults):
        self.shield.on_servo_faults(faults, self.now)
        if faults:
            self.latched = True

    @rule()
    def reset(self):
        was_stopped = self.shield.cause is not None
        why = self.shield.reset(self.now)
        if was_stopped and why is None:
            self.latched = False
            assert self.shield.state == "OK"

    @rule()
    def update(self):
        before = self.shield.cause is not None
        out = self.shield.update(self.now)
        if out.state.startswith(("FAULT", "ESTOP")):
            self.latched = True
        if before:
            # a latched stop is never left by update() alone
            assert out.state != "OK"
        if out.command is not None:
            assert out.command.shape == (18,) and np.isfinite(out.command).all()
        if out.state == "ESTOP":
            assert out.command is None

    @invariant()
    def stop_needs_reset(self):
        if self.latched:
            assert self.shield.state != "OK", "a latched stop was left without a valid reset"
            assert self.shield.cause is not None or self.shield.state == "WAITING"


ShieldMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40,
                                           deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
TestShieldStateful = ShieldMachine.TestCase


def test_estop_before_the_first_joint_state_does_not_raise():
    shield = SafetyShield()
    shield.on_estop(True, 0.0)
    out = shield.update(0.5)
    assert out.state == "ESTOP" and out.command is None
    shield.on_estop(False, 0.6)
    assert "no joint state" in shield.reset(0.6) or "stale" in shield.reset(0.6)
    shield.on_joint_state(NAMES, J.DEFAULT_POSE, 0.7)
    assert shield.reset(0.7) is None and shield.update(0.71).state == "OK"
