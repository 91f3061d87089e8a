"""servo_driver: owns the Herkulex bus; joint_states out, joint_commands in, e-stop itself.

The bus runs in its own thread at rate_hz: read every servo, publish joint_states, send one
S_JOG with the latest fresh joint_commands and publish on servo/jog what it sent (the goals
as the servos got them, clipped and in whole counts, stamped when the packet left: what a
recording needs to replay the robot exactly, ``kraby sysid``). emergency_stop=true is acted
on between two servo transactions (a brake or torque-free packet leaves within about a ms),
not at the end of the cycle and without waiting for the shield. Torque comes on only with
a joint_commands received after the stop was released. On shutdown (Ctrl-C, SIGTERM) the
servos are left braked or free (shutdown_action), never torque-on with a stale goal.
"""

import sys
import threading
import time

import numpy as np

from kraby_rl import ros
from kraby_rl.core import joints as J
from kraby_rl.core.realtime import disabled_by_env, raise_priority, take_priority
from kraby_rl.herkulex import protocol as P
from kraby_rl.herkulex import units as U
from kraby_rl.herkulex.driver import HerkulexBus, PortUnavailable
from kraby_rl.herkulex.calibration import CalibrationError, load_calibration
from kraby_rl.nodes import common as C
from kraby_rl.ros.messages import sensor_msgs, std_msgs
from kraby_rl.ros.runner import main_for

ACTIONS = ("brake", "free")
FAULT_BITS = (P.SE_OVERLOAD | P.SE_DRIVER_FAULT | P.SE_TEMPERATURE | P.SE_VOLTAGE
              | P.SE_EEP_DISTORTED)
"""Status error bits that are a servo fault (the servo's own alarm; by the DRS-0101's
default torque policy it goes torque-free). Invalid packets and the position limit are
bus and command matters, reported in diagnostics."""
BUS_RT_PRIORITY = 40
GIL_SWITCH_S = 0.0005
PARAMETERS = [
    ("port", "/dev/ttyUSB0", "bus URL: /dev/tty..., socket://host:port (ser2net) or a pty"),
    ("baudrate", 500000, "bus speed [bit/s]"),
    ("rate_hz", 50.0, "control cycle rate [Hz]"),
    ("calibration_file", "", "YAML from 'kraby servo calibrate' ('' = the joint table's)"),
    ("command_timeout_s", 0.2, "joint_commands older than this are not sent [s]"),
    ("estop_action", "brake", "what emergency_stop=true does: brake or free"),
    ("shutdown_action", "brake", "what the servos are left in on shutdown: brake or free"),
    ("read_effort", False, "also read PWM to estimate effort (adds 2 bytes per servo)"),
]


class ServoDriverNode(ros.Node):
    def __init__(self):
        super().__init__("servo_driver")
        p = C.declare(self, PARAMETERS)
        C.require(p["rate_hz"] > 0, "rate_hz", "a positive rate [Hz]", p["rate_hz"])
        C.require(p["baudrate"] > 0, "baudrate", "a positive bit rate", p["baudrate"])
        for name in ("estop_action", "shutdown_action"):
            C.require(p[name] in ACTIONS, name, " or ".join(ACTIONS), p[name])
        C.require(p["command_timeout_s"] > 0, "command_timeout_s", "a positive time [s]",
                  p["command_timeout_s"])
        self.p = p
        try:
            calibration = load_calibration(p["calibration_file"] or None)
        except CalibrationError as exc:
            raise ValueError(f"parameter 'calibration_file': {exc}") from None
        try:
            self.bus = HerkulexBus(p["port"], baudrate=p["baudrate"], calibration=calibration)
        except PortUnavailable as exc:
            raise ValueError(f"parameter 'port': cannot open {p['port']!r}: {exc}") from None
        self.bus.write_calibration()
        self.bus.set_torque("brake")
        self.torque = "brake"
        self.js_pub = self.create_publisher(sensor_msgs.JointState, "joint_states", 10)
        self.jog_pub = self.create_publisher(sensor_msgs.JointState, "servo/jog", 10)
        self.diag_pub = self.create_publisher(
            C.diagnostic_msgs.DiagnosticArray, "diagnostics", 10)
        self.faults_pub = self.create_publisher(C.diagnostic_msgs.DiagnosticArray,
                                                C.SERVO_FAULTS, C.LATCHED)
        self.faults = {}
        self.faults_pub.publish(C.servo_faults_msg(self, self.faults))
        self.create_subscription(sensor_msgs.JointState, "joint_commands", self.on_command, 10)
        self.create_subscription(std_msgs.Bool, "emergency_stop", self.on_estop, C.ESTOP_QOS)
        self.lock = threading.Lock()
        self.command = None
        self.command_t = -1.0
        self.estop = threading.Event()
        self.estop_t = None
        self.overruns = 0
        self.cycles = 0
        self.cycle_ms = []
        self._reading_age = [0.0, 0]    # sum of (18,) reading ages [s], cycles summed
        self.running = True
        self.priority = "normal (KRABY_REALTIME=0)"
        self._diag_last = (time.monotonic(), 0, 0)     # time, cycles, overruns
        self.create_timer(1.0, self.publish_diagnostics)
        # The e-stop path: this (executor) thread runs on_estop. It gets a real-time
        # priority above the bus thread's, and the interpreter hands the GIL over within
        # 0.5 ms instead of 5 ms, so a stop never waits behind a read cycle's Python code.
        sys.setswitchinterval(GIL_SWITCH_S)
        self.executor_priority = take_priority(BUS_RT_PRIORITY + 5)
        self._priority_set = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="herkulex-bus", daemon=True)
        self.thread.start()
        self._priority_set.wait(timeout=2.0)   # the log line below says what it got
        self.get_logger().info(f"bus {p['port']} at {p['baudrate']} baud, {p['rate_hz']:g} Hz "
                               f"(bus thread priority: {self.priority}, e-stop path: "
                               f"{self.executor_priority}); braked until the first "
                               f"joint_commands")

    # --- ROS callbacks (executor thread) ---------------------------------------------------
    def on_command(self, msg):
        try:
            q = C.joint_arrays(msg)
        except ValueError as exc:
            self.get_logger().warning(f"ignored joint_commands: {exc}", throttle_duration_sec=1)
            return
        with self.lock:
            self.command, self.command_t = q, time.monotonic()

    def on_estop(self, msg):
        if msg.data:
            if not self.estop.is_set():
                self.estop_t = time.monotonic()
                self.estop.set()
                self.get_logger().error(
                    f"emergency_stop: servos {self.p['estop_action']} now")
        elif self.estop.is_set():
            with self.lock:
                self.command = None     # torque returns only with a command sent after this
            self.estop.clear()
            self.get_logger().info("emergency_stop released; waiting for joint_commands")

    # --- the bus thread --------------------------------------------------------------------
    def _stop_now(self):
        if self.estop.is_set() and self.torque != self.p["estop_action"]:
            self.bus.set_torque(self.p["estop_action"])
            self.torque = self.p["estop_action"]

    def _report_faults(self, status_error) -> None:
        """Publish servo/faults when the set of servos in an error state changes."""
        bad = np.asarray(status_error) & FAULT_BITS
        if not self.faults and not bad.any():
            return                      # every cycle of a healthy robot
        faults = {}
        for k, se in enumerate(status_error):
            if int(se) & FAULT_BITS:
                names = P.flag_names(int(se) & FAULT_BITS, P.STATUS_ERROR_BITS)
                faults[J.JOINT_NAMES[k]] = (self.bus.ids[k], ", ".join(names))
        if faults != self.faults:
            new = sorted(set(faults) - set(self.faults))
            if new:
                self.get_logger().error("servo fault: " + "; ".join(
                    f"{j} (ID {faults[j][0]}): {faults[j][1]}" for j in new))
            self.faults = faults
            self.faults_pub.publish(C.servo_faults_msg(self, faults))

    def loop(self):
        if not disabled_by_env():
            self.priority = raise_priority(BUS_RT_PRIORITY)
        self._priority_set.set()
        period = 1.0 / self.p["rate_hz"]
        next_t = time.monotonic()
        while self.running:
            start = time.monotonic()
            try:
                self._stop_now()
                st = self.bus.read_state(pwm=self.p["read_effort"], between=self._stop_now)
                effort = st.effort if self.p["read_effort"] else None
                js = C.joint_state(self, st.position, st.velocity, effort)
                # how much older than the stamp each reading is: from the middle of its
                # transaction (the link's delays, unknown, taken as equal both ways)
                age = time.monotonic() - 0.5 * (st.asked + st.answered)
                if np.all(np.isfinite(age)):
                    self._reading_age[0] += age
                    self._reading_age[1] += 1
                self.js_pub.publish(js)
                self._report_faults(st.status_error)
                with self.lock:
                    q, fresh = self.command, time.monotonic() - self.command_t
                if q is not None and not self.estop.is_set() \
                        and fresh < self.p["command_timeout_s"]:
                    if self.torque != "on":
                        self.bus.set_torque("on")
                        self.torque = "on"
                    counts = self.bus.jog(q)
                    # stamped when the packet left (write(2) returned): stamped before
                    # jog() built it, kraby sysid saw the servos act 1.2 ms (median; p90
                    # 2.9 ms) after the stamp plus the wire time, and fitted a slower servo
                    # and less friction
                    left = ros.Duration(nanoseconds=int(1e9 * max(
                        0.0, time.monotonic() - self.bus.sent_at)))
                    stamp = (self.get_clock().now() - left).to_msg()
                    self.jog_pub.publish(C.joint_state(self, U.counts_to_rad(counts),
                                                       stamp=stamp))
            except PortUnavailable:
                pass                    # read_state reports it; the driver reopens
            except Exception as exc:  # noqa: B902 - the loop must survive, and say why
                if not self.running or not ros.ok():
                    break               # shutting down: the publishers are already gone
                self.get_logger().error(f"bus cycle failed: {exc}", throttle_duration_sec=1)
            took = time.monotonic() - start
            self.cycles += 1
            self.cycle_ms.append(took * 1e3)
            del self.cycle_ms[:-500]
            if took > period:
                self.overruns += 1
            next_t += period
            delay = next_t - time.monotonic()
            if delay < -period:
                next_t = time.monotonic()
            else:
                self._idle(delay)

    def _idle(self, delay: float) -> None:
        """Wait out the rest of the period (``delay`` [s]). An e-stop ends the wait at once
        (the loop's top brakes); one that came during this cycle, after its last check,
        brakes now instead of a period later."""
        if delay <= 0:
            return
        if not self.estop.is_set():
            self.estop.wait(delay)
        else:
            self._stop_now()
            time.sleep(delay)

    def publish_diagnostics(self):
        health = self.bus.health_report()
        offline = [(sid, J.JOINT_NAMES[k]) for k, sid in enumerate(self.bus.ids)
                   if not health["servos"][sid]["online"]]
        level = C.ERROR if offline or not health["connected"] else C.OK
        message = ("servo(s) not answering: " + ", ".join(f"ID {s} ({n})" for s, n in offline)
                   if offline else "port lost" if not health["connected"] else "OK")
        # the rate and the overruns since the last report: a loop that falls behind says so
        now, cycles, overruns = time.monotonic(), self.cycles, self.overruns
        t0, c0, o0 = self._diag_last
        self._diag_last = (now, cycles, overruns)
        rate = (cycles - c0) / max(now - t0, 1e-6)
        share = (overruns - o0) / max(cycles - c0, 1)
        want = self.p["rate_hz"]
        if level == C.OK and (rate < 0.5 * want or share > 0.5):
            level, message = C.ERROR, (f"bus loop at {rate:.1f} Hz of {want:g} Hz, "
                                       f"{100 * share:.0f} % of cycles overran")
        elif level == C.OK and (rate < 0.9 * want or share > 0.05):
            level, message = C.WARN, (f"bus loop at {rate:.1f} Hz of {want:g} Hz, "
                                      f"{100 * share:.0f} % of cycles overran")
        cycle = np.array(self.cycle_ms or [0.0])
        (age_s, age_n), self._reading_age = self._reading_age, [0.0, 0]
        values = {"torque": self.torque, "estop": self.estop.is_set(), "cycles": self.cycles,
                  "rate_hz": f"{rate:.1f}", "priority": self.priority,
                  "estop_priority": self.executor_priority,
                  "overruns": self.overruns, "cycle_p99_ms": f"{np.percentile(cycle, 99):.2f}",
                  # how much older than the joint_states stamp each servo's reading was (the
                  # middle of its transaction), mean over this period's whole cycles [ms],
                  # joint order (kraby sysid times each reading by it)
                  **({"reading_age_ms": " ".join(f"{1e3 * a:.3f}" for a in age_s / age_n)}
                     if age_n else {}),
                  **{f"bus_{k}": v for k, v in health["bus"].items()}}
        for sid, h in health["servos"].items():
            if h["timeouts"] or h["checksum_errors"] or h["retries"]:
                values[f"servo_{sid}"] = (f"timeouts={h['timeouts']} checksum="
                                          f"{h['checksum_errors']} retries={h['retries']}")
        self.diag_pub.publish(C.diagnostics(self, [C.status(
            "kraby_rl: servo_driver", level, message, values, hardware_id=self.p["port"])]))

    def destroy_node(self):
        self.running = False
        self.estop.set()
        self.thread.join(timeout=2.0)
        try:
            self.bus.set_torque(self.p["shutdown_action"])
            self.get_logger().info(f"servos left {self.p['shutdown_action']}")
        except Exception as exc:  # noqa: B902 - the bus may already be gone; still shut down
            self.get_logger().warn(f"could not leave the servos {self.p['shutdown_action']}: "
                                   f"{exc} (the bus is gone; they brake on their own when "
                                   f"the commands stop)")
        finally:
            self.bus.close()
        return super().destroy_node()


main = main_for(ServoDriverNode, "servo_driver")

if __name__ == "__main__":
    main()
