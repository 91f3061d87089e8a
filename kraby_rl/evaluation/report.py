"""``kraby eval POLICY --report DIR``: the figures a legged-robot person reads, and an index.

From the traces of an evaluation's episodes (``evaluate.run_episode(..., trace=...)``):

- ``gait.png``: the gait diagram of the first episode: stance (bar) and swing (gap) of each of
  the six legs over time;
- ``velocity.png``: commanded against achieved forward, lateral and yaw velocity (body frame,
  ground truth, 0.2 s moving mean) for the first episode;
- ``torque_speed.png``: every joint sample of every episode (torque at the speed it was
  applied at) against each servo's torque-speed envelope (the driving quadrants' line and
  the stall torque), with the share outside it;
- ``height_tilt.png``: body height above the ground and tilt from vertical over time;
- ``index.md``: the summary table (evaluation figures) and the four figures.

matplotlib draws them with its Agg backend (no display needed).
"""

from __future__ import annotations

import os

import numpy as np

from kraby_rl.core import joints as J

FIGURES = ("gait.png", "velocity.png", "torque_speed.png", "height_tilt.png")


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _moving_mean(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or len(x) < n:
        return x
    kernel = np.ones(n) / n
    return np.convolve(x, kernel, mode="same")


def body_velocity(dt: float, pos: np.ndarray, yaw: np.ndarray, window_s: float = 0.2):
    """(vx, vy, yaw rate) in the body's heading frame from positions and yaw, (T,) each."""
    yaw_u = np.unwrap(np.asarray(yaw, float))
    v_world = np.gradient(np.asarray(pos, float)[:, :2], dt, axis=0)
    c, s = np.cos(yaw_u), np.sin(yaw_u)
    vx = c * v_world[:, 0] + s * v_world[:, 1]
    vy = -s * v_world[:, 0] + c * v_world[:, 1]
    wz = np.gradient(yaw_u, dt)
    n = max(1, int(round(window_s / dt)))
    return _moving_mean(vx, n), _moving_mean(vy, n), _moving_mean(wz, n)


def stance_intervals(contact: np.ndarray, dt: float) -> list[list[tuple[float, float]]]:
    """Per leg, the (start [s], duration [s]) of each stance phase."""
    out = []
    for leg in range(contact.shape[1]):
        c = np.concatenate([[False], contact[:, leg].astype(bool), [False]])
        edges = np.flatnonzero(np.diff(c.astype(int)))
        starts, ends = edges[::2], edges[1::2]
        out.append([(s * dt, (e - s) * dt) for s, e in zip(starts, ends)])
    return out


def gait_diagram(ax, contact: np.ndarray, dt: float) -> list[list[tuple[float, float]]]:
    bars = stance_intervals(contact, dt)
    for row, intervals in enumerate(bars):
        ax.broken_barh(intervals, (row - 0.4, 0.8), facecolors="0.2")
    ax.set_yticks(range(len(bars)), [p.upper() for p in J.LEG_PREFIXES[:len(bars)]])
    ax.set_ylim(-0.6, len(bars) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("time [s]")
    ax.set_title("gait diagram: stance (bars) and swing (gaps) per leg")
    return bars


def write_report(out_dir: str, summary: dict, traces: list[dict], dt: float,
                 stall_torque, no_load_speed) -> dict:
    """Write the four PNGs and index.md into ``out_dir``; returns what was drawn
    ({'files': [...], 'legs': leg labels of the gait diagram, 'stance_phases': per leg})."""
    from kraby_rl.core.servo_model import envelope_excess, torque_envelope
    plt = _plt()
    os.makedirs(out_dir, exist_ok=True)
    tr = traces[0]
    t = np.arange(len(tr["yaw"])) * dt
    drawn = {"files": []}

    fig, ax = plt.subplots(figsize=(10, 3.2))
    bars = gait_diagram(ax, tr["contact"], dt)
    drawn["legs"] = [label.get_text() for label in ax.get_yticklabels()]
    drawn["stance_phases"] = [len(b) for b in bars]
    _save(fig, plt, out_dir, "gait.png", drawn)

    vx, vy, wz = body_velocity(dt, tr["pos"], tr["yaw"])
    cmd = tr["command"]
    fig, axes = plt.subplots(3, 1, figsize=(10, 6.5), sharex=True)
    for ax, got, want, label in zip(axes, (vx, vy, wz), cmd,
                                    ("forward vx [m/s]", "lateral vy [m/s]",
                                     "yaw rate [rad/s]")):
        ax.plot(t, got, lw=1.0, label="achieved (0.2 s mean)")
        ax.axhline(want, color="C3", ls="--", lw=1.2, label="commanded")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title("commanded vs achieved velocity (body frame, ground truth)")
    axes[-1].set_xlabel("time [s]")
    _save(fig, plt, out_dir, "velocity.png", drawn)

    w = np.concatenate([x["w_tau"] for x in traces])
    tau = np.concatenate([x["tau"] for x in traces])
    stall = np.broadcast_to(np.asarray(stall_torque, float), (J.NUM_JOINTS,))
    w0 = np.broadcast_to(np.asarray(no_load_speed, float), (J.NUM_JOINTS,))
    outside = envelope_excess(tau, w, stall, w0) > 0
    fig, ax = plt.subplots(figsize=(7, 5.5))
    step = max(1, len(w) // 4000)
    ax.scatter(w[::step].ravel(), tau[::step].ravel(), s=2, alpha=0.3, color="C0",
               label="joint samples")
    if outside.any():
        ax.scatter(w[outside], tau[outside], s=6, color="C3", label="outside the envelope")
    ws = np.linspace(-w0.max(), w0.max(), 201)
    env = torque_envelope(np.abs(ws), stall.min(), w0.min())
    ax.plot(ws, np.sign(ws) * env, color="k", lw=1.2, label="envelope (weakest servo)")
    ax.axhline(stall.max(), color="k", ls=":", lw=1)
    ax.axhline(-stall.max(), color="k", ls=":", lw=1, label="stall torque")
    ax.set_xlabel("joint speed [rad/s]")
    ax.set_ylabel("joint torque [N m]")
    ax.set_title(f"torque-speed samples, {len(traces)} episode(s): "
                 f"{100 * outside.mean():.2f} % outside the envelope")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    drawn["envelope_outside"] = float(outside.mean())
    _save(fig, plt, out_dir, "torque_speed.png", drawn)

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 4.5), sharex=True)
    a1.plot(t, tr["h"], lw=1.0)
    a1.set_ylabel("body height [m]")
    a1.grid(alpha=0.3)
    a2.plot(t, np.degrees(tr["tilt"]), lw=1.0, color="C1")
    a2.set_ylabel("tilt [deg]")
    a2.set_xlabel("time [s]")
    a2.grid(alpha=0.3)
    a1.set_title("body height above the ground and tilt from vertical")
    _save(fig, plt, out_dir, "height_tilt.png", drawn)

    _index(out_dir, summary)
    drawn["files"].append("index.md")
    return drawn


def _save(fig, plt, out_dir, name, drawn):
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=110)
    plt.close(fig)
    drawn["files"].append(name)


def _index(out_dir: str, summary: dict) -> None:
    m, worst = summary["mean"], summary["worst"]
    rows = [
        ("episodes", f"{summary['episodes']} x {summary['seconds']:g} s"),
        ("falls", f"{summary['falls']}"),
        ("mean velocity vx, vy", f"{m['vx']:+.3f}, {m['vy']:+.3f} m/s"),
        ("mean yaw rate", f"{m['yaw_rate']:+.3f} rad/s"),
        ("stance slip (mean / worst episode)",
         f"{m['slip_mean']:.3f} / {worst['slip_mean']:.3f} m/s"),
        ("step frequency (mean / worst)",
         f"{m['step_freq_hz']:.2f} / {worst['step_freq_hz']:.2f} Hz"),
        ("duty factor", f"{m['duty_factor']:.2f}"),
        ("peak joint speed", f"{worst['joint_speed_peak']:.2f} rad/s"),
        ("envelope violations (worst)", f"{100 * worst['envelope_violations']:.2f} %"),
        ("body height", f"{m['height_min']:.3f}-{m['height_max']:.3f} m"),
        ("tilt max", f"{m['tilt_max_deg']:.1f} deg"),
    ]
    lines = [f"# Evaluation report: {summary['policy']}", "",
             f"Env `{summary['env_id']}`; command and figures per episode in the JSON that "
             "`kraby eval` prints.", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "## Gait diagram", "", "![gait](gait.png)", "",
              "## Commanded vs achieved velocity", "", "![velocity](velocity.png)", "",
              "## Torque-speed samples against the servo envelope", "",
              "![torque-speed](torque_speed.png)", "",
              "## Body height and tilt", "", "![height and tilt](height_tilt.png)", ""]
    with open(os.path.join(out_dir, "index.md"), "w") as fh:
        fh.write("\n".join(lines))


def trace_arrays(rec: dict, command) -> dict:
    """The trace ``write_report`` reads, from ``run_episode``'s per-step record."""
    out = {k: np.asarray(v) for k, v in rec.items()}
    out["command"] = [float(c) for c in command]
    out["tilt"] = np.asarray(rec["tilt"], float)
    return out


__all__ = ["write_report", "trace_arrays", "body_velocity", "stance_intervals", "FIGURES"]
