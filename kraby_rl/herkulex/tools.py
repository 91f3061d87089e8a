"""``kraby servo ...``: bench tools for the Herkulex bus (scan, status, read, torque, jog,
clear-errors, set-id, calibrate). Each prints what it did and exits non-zero with a sentence
that says what went wrong (port missing, no servo at ID n, checksum errors counted)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.herkulex import protocol as P
from kraby_rl.herkulex.calibration import calibration_yaml, load_calibration  # noqa: F401
from kraby_rl.herkulex.units import VOLTAGE_LSB


class ToolError(Exception):
    """A tool failed; the message is for the user."""


def parse_ids(text: str) -> list[int]:
    """``"0-17"``, ``"3,5,9"`` or ``"0-2,9"`` -> IDs; each 0..253."""
    out = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"servo IDs must look like 0-17 or 3,5,9; found {text!r}") from None
        if not 0 <= a <= b <= P.MAX_ID:
            raise argparse.ArgumentTypeError(
                f"servo IDs must be within 0..{P.MAX_ID}, low before high; found {part!r}")
        out.extend(range(a, b + 1))
    return out


def _open(args):
    from kraby_rl.herkulex.driver import HerkulexBus, PortUnavailable
    try:
        args.bus = HerkulexBus(args.port, baudrate=args.baud, timeout_s=args.timeout_ms * 1e-3,
                               calibration=load_calibration(getattr(args, "calibration", None)))
        return args.bus
    except PortUnavailable as exc:
        raise ToolError(f"{exc}. Check the device path, or start a relay or "
                        f"`kraby fake-bus`.") from None


def _require(bus, ids) -> None:
    """STAT each ID; raise naming the first that does not answer."""
    from kraby_rl.herkulex.driver import BusError
    for sid in ids:
        try:
            bus.stat(sid)
        except BusError as exc:
            raise ToolError(f"no servo answered at ID {sid} on {bus.url}: {exc}") from None


def _summary(bus) -> str:
    rep = bus.health_report()["servos"]
    bad = {k: sum(s[k] for s in rep.values())
           for k in ("timeouts", "checksum_errors", "bad_replies")}
    return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in bad.items() if v)


def cmd_scan(args, out) -> None:
    bus = _open(args)
    t0 = time.monotonic()
    found = bus.scan(args.ids)
    dt = time.monotonic() - t0
    for sid, ack in found.items():
        name = J.JOINT_NAMES[sid] if sid < J.NUM_JOINTS else "-"
        print(f"ID {sid:3d}  {name:9s}  status error 0x{ack.status_error:02X} "
              f"detail 0x{ack.status_detail:02X}  {', '.join(ack.errors()) or 'no errors'}",
              file=out)
    print(f"{len(found)} servo(s) answered out of {len(args.ids)} IDs scanned in {dt:.2f} s",
          file=out)
    if not found:
        raise ToolError(f"no servo answered on {args.port} at {args.baud} baud "
                        f"(IDs {args.ids[0]}..{args.ids[-1]})")
    # Kraby's servos among the IDs scanned must all answer (or --expect N servos in all)
    if args.expect is not None:
        if len(found) < args.expect:
            raise ToolError(f"expected {args.expect} servo(s), found {len(found)}: "
                            f"{sorted(found)}")
        return
    missing = [i for i in args.ids if i < J.NUM_JOINTS and i not in found]
    if missing:
        raise ToolError("servo(s) of the robot did not answer: " + ", ".join(
            f"ID {i} ({J.JOINT_NAMES[i]})" for i in missing) +
            f" ({len(found)} of {len([i for i in args.ids if i < J.NUM_JOINTS])} expected)")


def cmd_status(args, out) -> None:
    from kraby_rl.herkulex.driver import BusError
    bus = _open(args)
    missing = []
    print("ID   joint      torque  volt [V]  temp raw  errors / details", file=out)
    for sid in args.ids:
        try:
            ack = bus.read_ram(sid, P.Ram.STATUS_ERROR, 8)
        except BusError:
            missing.append(sid)
            print(f"{sid:3d}  no answer", file=out)
            continue
        torque = {0x00: "free", 0x40: "brake", 0x60: "on"}.get(
            ack.u8(P.Ram.TORQUE_CONTROL), f"0x{ack.u8(P.Ram.TORQUE_CONTROL):02X}")
        name = J.JOINT_NAMES[sid] if sid < J.NUM_JOINTS else "-"
        print(f"{sid:3d}  {name:9s}  {torque:6s}  {ack.u8(P.Ram.VOLTAGE) * VOLTAGE_LSB:7.2f}  "
              f"{ack.u8(P.Ram.TEMPERATURE):8d}  "
              f"{', '.join(ack.errors() + ack.details()) or '-'}", file=out)
    if missing:
        raise ToolError(f"no servo answered at ID {', '.join(map(str, missing))} on "
                        f"{args.port}")


def cmd_read(args, out) -> None:
    bus = _open(args)
    period = 1.0 / args.watch if args.watch else None
    while True:
        st = bus.read_state(pwm=True)
        print(f"{'joint':9s}  {'ID':>3s}  {'pos [rad]':>9s}  {'pos [deg]':>9s}  "
              f"{'vel [rad/s]':>11s}  {'effort [N*m]':>12s}", file=out)
        for k, name in enumerate(J.JOINT_NAMES):
            if not st.valid[k]:
                print(f"{name:9s}  {bus.ids[k]:3d}  no answer", file=out)
                continue
            print(f"{name:9s}  {bus.ids[k]:3d}  {st.position[k]:9.4f}  "
                  f"{np.degrees(st.position[k]):9.2f}  {st.velocity[k]:11.3f}  "
                  f"{st.effort[k]:12.3f}", file=out)
        if not st.valid.any():
            raise ToolError(f"no servo answered on {args.port}: {bus.last_error or _summary(bus)}")
        if period is None:
            break
        out.flush()
        time.sleep(period)
    missing = [bus.ids[k] for k in np.flatnonzero(~st.valid)]
    if missing:
        raise ToolError(f"no servo answered at ID {', '.join(map(str, missing))} "
                        f"({_summary(bus)})")


def cmd_torque(args, out) -> None:
    from kraby_rl.herkulex.driver import TORQUE_MODES, BusError
    bus = _open(args)
    bus.set_torque(args.mode, None if args.ids is None else args.ids)
    ids = args.ids if args.ids is not None else bus.ids
    want = TORQUE_MODES[args.mode]
    wrong = []
    for sid in ids:
        try:
            ack = bus.read_ram(sid, P.Ram.TORQUE_CONTROL, 1)
        except BusError:
            wrong.append(f"ID {sid}: no answer")
            continue
        if ack.u8(P.Ram.TORQUE_CONTROL) != want:
            wrong.append(f"ID {sid}: torque 0x{ack.u8(P.Ram.TORQUE_CONTROL):02X} "
                         f"({', '.join(ack.errors()) or 'no error'})")
    if wrong:
        raise ToolError(f"torque {args.mode} did not take on {len(wrong)} servo(s): "
                        + "; ".join(wrong) + ". Clear errors first with "
                        "`kraby servo clear-errors`.")
    print(f"torque {args.mode} on {len(ids)} servo(s)", file=out)


def cmd_jog(args, out) -> None:
    bus = _open(args)
    st = bus.read_state()
    if not st.valid.all():
        missing = [bus.ids[k] for k in np.flatnonzero(~st.valid)]
        raise ToolError(f"no servo answered at ID {', '.join(map(str, missing))}; a JOG "
                        f"needs every joint's current position")
    q = st.position.copy()
    if args.pose == "default":
        q = J.DEFAULT_POSE.copy()
    elif args.pose == "zero":
        q = np.zeros(J.NUM_JOINTS)
    else:
        try:
            k = J.joint_index(args.joint) if args.joint else bus.ids.index(args.id)
        except ValueError as exc:
            raise ToolError(str(exc) if args.joint else
                            f"ID {args.id} is not one of the robot's servo IDs {bus.ids}") \
                from None
        lo, hi = J.LOWER[k], J.UPPER[k]
        if not lo <= args.rad <= hi:
            raise ToolError(f"{J.JOINT_NAMES[k]}: {args.rad} rad is outside its limits "
                            f"[{lo}, {hi}] rad")
        q[k] = args.rad
    off = [sid for sid in bus.ids if not bus.health[sid].status_detail & P.SD_MOTOR_ON]
    if off:
        raise ToolError(f"torque is off on ID {', '.join(map(str, off))}: run "
                        f"`kraby servo torque on --port {args.port}` first")
    counts = bus.jog(q, args.playtime_s)
    time.sleep(args.playtime_s + 0.1)
    st = bus.read_state()
    err = np.abs(st.position - q)
    worst = int(np.nanargmax(err))
    print(f"jogged to {args.pose or 'target'} (goals {counts.min()}..{counts.max()} counts); "
          f"largest error now {err[worst]:.3f} rad at {J.JOINT_NAMES[worst]}", file=out)


def cmd_clear(args, out) -> None:
    bus = _open(args)
    ids = args.ids if args.ids is not None else bus.ids
    bus.clear_errors(ids)
    _require(bus, ids)
    still = [sid for sid in ids if bus.health[sid].status_error]
    if still:
        raise ToolError(f"errors came back at ID {', '.join(map(str, still))} (the cause is "
                        f"still there, see `kraby servo status`)")
    print(f"cleared status on {len(ids)} servo(s); torque stays off until "
          f"`kraby servo torque on`", file=out)


def cmd_set_id(args, out) -> None:
    bus = _open(args)
    _require(bus, [args.old])
    from kraby_rl.herkulex.driver import BusError
    try:
        bus.stat(args.new, retries=0)
        raise ToolError(f"ID {args.new} is already taken on {args.port}")
    except BusError:
        pass
    bus.write_eep(args.old, P.Eep.ID, [args.new])
    bus.reboot(args.old)
    time.sleep(0.6)
    try:
        bus.stat(args.new)
    except BusError as exc:
        raise ToolError(f"after writing ID {args.new} and rebooting, no servo answered at it: "
                        f"{exc}") from None
    print(f"servo ID {args.old} is now ID {args.new} (EEPROM, after reboot)", file=out)


def cmd_calibrate(args, out) -> None:
    from kraby_rl.herkulex.driver import BusError
    bus = _open(args)
    bus.set_torque("free")
    if not args.yes:
        print("Torque is free. Put every joint at its zero (femur horizontal, tibia "
              "vertical, coxa straight out), then press Enter.", file=sys.stderr)
        sys.stdin.readline()
    cal = np.zeros(J.NUM_JOINTS, dtype=np.int64)
    for k, sid in enumerate(bus.ids):
        try:
            ack = bus.read_ram(sid, P.Ram.ABSOLUTE_POSITION, 2)
        except BusError as exc:
            raise ToolError(f"no servo answered at ID {sid}: {exc}") from None
        cal[k] = ack.position(P.Ram.ABSOLUTE_POSITION) - J.ZERO_COUNTS[k]
    bad = [f"{J.JOINT_NAMES[k]} {cal[k]}" for k in range(J.NUM_JOINTS) if abs(cal[k]) > 127]
    if bad:
        raise ToolError(f"calibration differences must fit in -128..127 counts; found "
                        f"{', '.join(bad)}: is the joint really at zero, or the horn "
                        f"mounted one spline off?")
    text = calibration_yaml(cal, args.port)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        print(f"wrote {args.out}", file=out)
    else:
        out.write(text)
    if args.write:
        bus.calibration = cal
        bus.write_calibration()
        if args.persist:
            for sid, c in zip(bus.ids, cal):
                bus.write_eep(sid, P.Eep.CALIBRATION_DIFFERENCE, [int(c) & 0xFF])
        print("calibration written to RAM 47" + (" and EEPROM 53" if args.persist else ""),
              file=out)


def add_parser(sub) -> None:
    """Register ``kraby servo ...`` on an argparse subparsers object."""
    s = sub.add_parser("servo", help="Herkulex bus tools (scan, status, read, torque, jog...)")
    ss = s.add_subparsers(dest="servo_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--port", required=True,
                        help="serial port or pyserial URL: /dev/ttyS4, socket://HOST:2000")
    common.add_argument("--baud", type=int, default=500_000, help="bit/s (default 500000)")
    common.add_argument("--timeout-ms", type=float, default=10.0,
                        help="per-transaction timeout on top of wire time [ms]")
    common.add_argument("--calibration", help="calibration YAML (default: the joint table's)")
    all_ids = list(range(J.NUM_JOINTS))

    p = ss.add_parser("scan", parents=[common], help="find servos (STAT every ID)")
    p.add_argument("--ids", type=parse_ids, default=list(range(P.MAX_ID + 1)),
                   help="IDs to try (default 0-253)")
    p.add_argument("--expect", type=int, default=None, metavar="N",
                   help="exit 1 unless at least N servos answer (default: every one of the "
                        "robot's IDs 0-17 that is scanned must answer)")
    p.set_defaults(servo_func=cmd_scan)
    p = ss.add_parser("status", parents=[common], help="errors, torque, voltage per servo")
    p.add_argument("--ids", type=parse_ids, default=all_ids)
    p.set_defaults(servo_func=cmd_status)
    p = ss.add_parser("read", parents=[common], help="joint positions, speeds, efforts")
    p.add_argument("--watch", type=float, metavar="HZ", help="repeat at this rate")
    p.set_defaults(servo_func=cmd_read)
    p = ss.add_parser("torque", parents=[common], help="torque on, brake or off")
    p.add_argument("mode", choices=["on", "brake", "off", "free"])
    p.add_argument("--ids", type=parse_ids, help="default: broadcast to all")
    p.set_defaults(servo_func=cmd_torque)
    p = ss.add_parser("jog", parents=[common], help="move one joint, or all to a pose")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--joint", help="joint name, e.g. lf_femur")
    g.add_argument("--id", type=int, help="servo ID")
    g.add_argument("--pose", choices=["default", "zero"], help="all joints to a pose")
    p.add_argument("--rad", type=float, help="goal angle [rad] (with --joint/--id)")
    p.add_argument("--playtime-s", type=float, default=0.5, help="move duration [s]")
    p.set_defaults(servo_func=cmd_jog)
    p = ss.add_parser("clear-errors", parents=[common], help="clear status error bits")
    p.add_argument("--ids", type=parse_ids)
    p.set_defaults(servo_func=cmd_clear)
    p = ss.add_parser("set-id", parents=[common], help="change a servo's ID (EEPROM)")
    p.add_argument("old", type=int)
    p.add_argument("new", type=int)
    p.set_defaults(servo_func=cmd_set_id)
    p = ss.add_parser("calibrate", parents=[common],
                      help="measure calibration differences at the zero pose")
    p.add_argument("--out", help="write the calibration YAML here (default: print)")
    p.add_argument("--write", action="store_true", help="also write them to the servos' RAM")
    p.add_argument("--persist", action="store_true", help="with --write: EEPROM too")
    p.add_argument("--yes", action="store_true", help="do not wait for Enter")
    p.set_defaults(servo_func=cmd_calibrate)
    s.set_defaults(func=run)


def run(args) -> int:
    if getattr(args, "servo_command", None) == "jog" and args.pose is None and args.rad is None:
        print("kraby servo jog: --rad is required with --joint or --id", file=sys.stderr)
        return 2
    if not 0 <= getattr(args, "old", 0) <= P.MAX_ID or not 0 <= getattr(args, "new", 0) <= \
            P.MAX_ID:
        print(f"kraby servo set-id: IDs must be within 0..{P.MAX_ID}", file=sys.stderr)
        return 2
    rc = 0
    try:
        args.servo_func(args, sys.stdout)
    except ToolError as exc:
        print(f"kraby servo {args.servo_command}: {exc}", file=sys.stderr)
        rc = 1
    except ValueError as exc:
        print(f"kraby servo {args.servo_command}: {exc}", file=sys.stderr)
        rc = 2
    bus = getattr(args, "bus", None)
    if bus is not None:
        trouble = _summary(bus)
        if trouble:
            print(f"kraby servo {args.servo_command}: bus trouble counted: {trouble}",
                  file=sys.stderr)
        bus.close()
    return rc
