"""``kraby eval POLICY``: episodes, returns, achieved velocity, falls and gait plausibility.

POLICY is an exported policy directory (``policy.json`` + ``policy.npz``, run with numpy),
a training run directory (run with stable-baselines3), or ``tripod`` (the open-loop
reference gait of ``core.gait``, a baseline that needs no training).
"""

from __future__ import annotations

import json
import math
import os

import gymnasium as gym
import numpy as np

from kraby_rl.core import geometry as G
from kraby_rl.core import joints as J
from kraby_rl.core import spec as S
from kraby_rl.core.contract import Contract, DEFAULT
from kraby_rl.core.gait_metrics import gait_figures


class TripodActor:
    """The tripod gait as a policy of the observation alone (phase from the gait clock)."""

    def __init__(self, contract: Contract = DEFAULT):
        self.gait = contract.tripod_gait()
        self.metadata = {"env_id": "kraby_rl/Hexapod-v0",
                         "env": {"clock_hz": contract.clock_hz}}

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        sin, cos = obs[S.OBS_SLICES["clock"]]
        phase = (math.atan2(sin, cos) / (2 * math.pi)) % 1.0
        cmd = obs[S.OBS_SLICES["command"]]
        q = self.gait.joint_targets(phase / self.gait.frequency, cmd)
        return np.clip(S.targets_to_action(q), -1.0, 1.0)


class SB3Actor:
    """A training run's model (needs torch), with its observation normalisation."""

    def __init__(self, run_dir: str):
        from kraby_rl.training.train import load_model
        self.model, self.vec, cfg = load_model(run_dir)
        self.metadata = {"env_id": cfg.env_id, "env": cfg.env}

    def __call__(self, obs):
        if self.vec is not None:
            obs = self.vec.normalize_obs(obs)
        a, _ = self.model.predict(obs, deterministic=True)
        return a


def load_actor(policy: str):
    """An actor (callable obs -> action with ``metadata``) from a POLICY argument."""
    from kraby_rl.core.policy_runtime import ExportedPolicy
    if policy == "tripod":
        return TripodActor()
    if os.path.exists(os.path.join(policy, "policy.json")) or policy.endswith("policy.json"):
        return _checked(ExportedPolicy(policy))
    if os.path.exists(os.path.join(policy, "config.yaml")):
        from kraby_rl.training.config import EVOLUTION_ALGORITHMS
        from kraby_rl.training.train import load_run_config
        run_cfg = load_run_config(policy)
        if run_cfg.algorithm in EVOLUTION_ALGORITHMS or run_cfg.engine == "rllib":
            from kraby_rl.training.export import export
            return _checked(ExportedPolicy(export(policy)))
        return SB3Actor(policy)
    from kraby_rl.resources import resolve_policy
    try:
        path = resolve_policy(policy)
    except ValueError:
        raise FileNotFoundError(
            f"policy {policy!r}: expected 'tripod', an export directory (policy.json + "
            f"policy.npz), a shipped policy's name or a training run directory "
            f"(config.yaml)") from None
    return _checked(ExportedPolicy(path))


def _checked(policy):
    """An exported walking policy is evaluated only if its contract is this package's."""
    if policy.metadata.get("env_id", "kraby_rl/Hexapod-v0") == "kraby_rl/Hexapod-v0":
        policy.contract()
    return policy


def run_episode(env, actor, seed: int, command=None, frames: list | None = None,
                frame_every: int = 2, options: dict | None = None,
                trace: dict | None = None, bag=None) -> dict:
    """One episode of Hexapod-v0; returns its return, fall flag and gait figures.
    ``options`` go to ``env.reset`` (terrain, faults), with ``command`` when given; a
    ``trace`` dict receives the per-step arrays (for ``evaluation.report``); a ``bag``
    (``episode_bag.EpisodeBag``) gets each step's messages."""
    u = env.unwrapped
    opts = dict(options or {})
    if command is not None:
        opts["command"] = command
    obs, _ = env.reset(seed=seed, options=opts)
    rec = {k: [] for k in ("pos", "yaw", "contact", "slip", "w", "tau", "w_tau", "h", "tilt")}
    ret, fell, k = 0.0, False, 0
    while True:
        obs, r, term, trunc, info = env.step(actor(obs))
        ret += r
        s = u.robot_state
        if bag is not None:
            bag.add(s.t, s, u.command)
        rec["pos"].append(s.base_pos)
        rec["yaw"].append(G.yaw_from_quat(s.base_quat))
        rec["contact"].append(s.foot_contact)
        rec["slip"].append(s.foot_slip)
        rec["w"].append(s.w)
        rec["tau"].append(s.tau)
        rec["w_tau"].append(s.w_tau)
        rec["h"].append(s.height)
        rec["tilt"].append(G.tilt_from_gravity(s.gravity_body))
        if frames is not None and k % frame_every == 0:
            frames.append(env.render())
        k += 1
        if term or trunc:
            fell = bool(term)
            break
    a = {k: np.array(v) for k, v in rec.items()}
    if trace is not None:
        trace.update(a, command=[float(c) for c in u.command])
    # each servo against its own envelope this episode (randomised strength and speed)
    # slip and steps of the legs it walks on: a limp leg's foot is dragged (gait_metrics)
    limp = u.fault_spec.limp_legs()
    legs = np.array([p not in limp for p in J.LEG_PREFIXES])
    fig = gait_figures(u.dt, a["pos"], a["yaw"], a["contact"], a["slip"], a["w"], a["tau"],
                       a["h"], a["tilt"], *u.world.servo.envelope(), a["w_tau"], legs)
    return {"seed": seed, "command": [float(c) for c in u.command], "return": float(ret),
            "fell": fell, **fig}


NAVIGATE = "kraby_rl/Navigate-v0"
ONE_LEG = ("kraby_rl/OneLeg-v0", "kraby_rl/OneLegReach-v0")
REACH_TOLERANCE_M = 0.005
"""Success radius of a one-leg reach [m] (OneLegReach-v0: its own ``tolerance_m``)."""


def evaluate(policy: str, episodes: int = 5, seconds: float | None = None, command=None,
             seed: int = 1000, video: str | None = None, env_overrides: dict | None = None,
             randomized: bool = False, log=print, report: str | None = None,
             record: str | None = None) -> dict:
    """Evaluate POLICY on Hexapod-v0 (or OneLeg-v0, Navigate-v0) and print a report; returns
    the summary. ``seconds``: episode length (default 20 s; a navigation policy's own).
    ``report``: a directory for the figures of ``evaluation.report`` and their index;
    ``record``: a directory for one rosbag2 bag per episode (``episode_bag``)."""
    import kraby_rl.envs  # noqa: F401
    actor = load_actor(policy)
    meta = getattr(actor, "metadata", {})
    env_id = meta.get("env_id", "kraby_rl/Hexapod-v0")
    env_kwargs = dict(meta.get("env", {}))
    env_kwargs.update(env_overrides or {})
    if randomized and not env_kwargs.get("randomize"):
        raise ValueError(f"--randomized: policy {policy!r} was not trained with randomisation "
                         f"(its env has no 'randomize' ranges)")
    if env_kwargs.get("randomize") is None:
        env_kwargs.pop("randomize", None)
    if seconds is None and env_id in ONE_LEG:
        seconds = env_kwargs.get("episode_s")      # None: the env's own
    elif seconds is None:
        seconds = float(env_kwargs.get("episode_s", 40.0)) if env_id == NAVIGATE else 20.0
    if seconds is not None:
        env_kwargs["episode_s"] = seconds
    if video:
        env_kwargs["render_mode"] = "rgb_array"
    env = gym.make(env_id, **env_kwargs)
    if env_id in ONE_LEG:
        if report or record:
            raise ValueError("--report/--record: the figures and topics are those of a "
                             f"walking robot; {env_id} has one leg on a stand")
        return _evaluate_one_leg(env, actor, episodes, seed, log)
    if env_id == NAVIGATE:
        if report or record or command is not None or video:
            raise ValueError("--report/--record/--command/--video: not for a navigation "
                             f"policy ({env_id}: goals are drawn per episode)")
        return _evaluate_navigate(env, actor, episodes, seed, seconds, log)
    frames = [] if video else None
    results, traces = [], []
    if record and os.path.exists(record) and os.listdir(record):
        raise ValueError(f"--record {record!r}: exists and is not empty; give a new directory")
    for i in range(episodes):
        traces.append({} if report else None)
        bag = None
        if record:
            from kraby_rl.evaluation.episode_bag import EpisodeBag, episode_path
            bag = EpisodeBag(episode_path(record, i))
        try:
            res = run_episode(env, actor, seed + i, command, frames if i == 0 else None,
                              trace=traces[-1], bag=bag)
        finally:
            if bag is not None:
                bag.close()
        results.append(res)
        log(f"episode {i}: cmd ({res['command'][0]:+.2f} m/s, {res['command'][1]:+.2f} m/s, "
            f"{res['command'][2]:+.2f} rad/s) -> ({res['vx']:+.3f} m/s, {res['vy']:+.3f} m/s, "
            f"{res['yaw_rate']:+.3f} rad/s)  return {res['return']:7.2f}  "
            f"{'FELL' if res['fell'] else 'ok  '}  slip {res['slip_mean']:.3f} m/s  "
            f"steps {res['step_freq_hz']:.2f} Hz  peak |w| {res['joint_speed_peak']:.2f} rad/s  "
            f"envelope viol. {100 * res['envelope_violations']:.2f} %")
    env.close()
    keys = [k for k in results[0] if isinstance(results[0][k], float) and k != "seed"]
    summary = {"policy": policy, "env_id": env_id, "episodes": episodes, "seconds": seconds,
               "falls": sum(r["fell"] for r in results),
               "mean": {k: float(np.mean([r[k] for r in results])) for k in keys},
               "worst": {"slip_mean": max(r["slip_mean"] for r in results),
                         "step_freq_hz": max(r["step_freq_hz"] for r in results),
                         "joint_speed_peak": max(r["joint_speed_peak"] for r in results),
                         "envelope_violations": max(r["envelope_violations"]
                                                    for r in results)},
               "episodes_detail": results}
    m = summary["mean"]
    peak = summary["worst"]["joint_speed_peak"]
    log(f"summary: mean return {m['return']:.2f}, falls {summary['falls']}/{episodes}, "
        f"mean slip in stance {m['slip_mean']:.3f} m/s, step frequency "
        f"{m['step_freq_hz']:.2f} Hz, duty factor {m['duty_factor']:.2f}, peak joint speed "
        f"{peak:.2f} rad/s ({100 * peak / J.SERVO_NO_LOAD_SPEED:.0f} % of "
        f"no-load), peak power {m['power_peak']:.2f} W, height {m['height_min']:.3f}-"
        f"{m['height_max']:.3f} m, tilt max {m['tilt_max_deg']:.1f} deg")
    if video:
        _write_video(video, frames, fps=int(round(1.0 / (2 * env.unwrapped.dt))))
        log(f"video: {video} ({len(frames)} frames)")
    if record:
        log(f"recorded: {episodes} bag(s) in {record} (episode_0 ... episode_{episodes - 1})")
    if report:
        from kraby_rl.evaluation.report import write_report
        stall, w0 = env.unwrapped.world.servo.envelope()
        drawn = write_report(report, summary, traces, env.unwrapped.dt, stall, w0)
        log(f"report: {os.path.join(report, 'index.md')} ({', '.join(drawn['files'][:-1])})")
    return summary


def _evaluate_one_leg(env, actor, episodes, seed, log) -> dict:
    """One-leg reaching (OneLeg-v0 dense, OneLegReach-v0 goal-conditioned): a target per
    episode; success is a final distance within the reach tolerance."""
    tol = float(getattr(env.unwrapped, "tolerance_m", REACH_TOLERANCE_M))
    dists, rets = [], []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        ret = 0.0
        while True:
            obs, r, term, trunc, info = env.step(actor(obs))
            ret += r
            if term or trunc:
                break
        dists.append(info["distance"])
        rets.append(ret)
        log(f"episode {i}: return {ret:.2f}, final distance {1000 * info['distance']:.1f} mm"
            f"{'  success' if info['distance'] <= tol else ''}")
    env.close()
    d = np.array(dists)
    summary = {"env_id": env.spec.id if env.spec else None, "episodes": episodes,
               "tolerance_m": tol, "success_rate": float(np.mean(d <= tol)),
               "mean": {"return": float(np.mean(rets)), "final_distance_m": float(d.mean())},
               "worst": {"final_distance_m": float(d.max())}}
    log(f"summary: {int(np.sum(d <= tol))}/{episodes} targets within {1000 * tol:g} mm "
        f"({100 * summary['success_rate']:.0f} %), mean final distance "
        f"{1000 * d.mean():.1f} mm, worst {1000 * d.max():.1f} mm")
    return summary


def _evaluate_navigate(env, actor, episodes, seed, seconds, log) -> dict:
    """Navigate-v0 episodes: a goal drawn per episode, reached or not within ``seconds``."""
    rows = []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        start = float(info["distance"])
        steps = 0
        while True:
            a = int(np.asarray(actor(obs)).reshape(-1)[0])
            obs, _, term, trunc, info = env.step(a)
            steps += 1
            if term or trunc:
                break
        rows.append({"seed": seed + i, "start_distance_m": start,
                     "final_distance_m": float(info["distance"]), "arrived": info["arrived"],
                     "fell": info["fell"], "time_s": float(info["t"]), "decisions": steps})
        r = rows[-1]
        log(f"episode {i}: goal {start:.2f} m away -> {r['final_distance_m']:.3f} m after "
            f"{r['time_s']:.1f} s  "
            f"{'ARRIVED' if r['arrived'] else 'FELL' if r['fell'] else 'missed'}")
    env.close()
    arrived = [r for r in rows if r["arrived"]]
    summary = {"env_id": NAVIGATE, "episodes": episodes, "seconds": seconds,
               "arrive_m": env.unwrapped.spec_nav.arrive_m,
               "success_rate": len(arrived) / episodes,
               "falls": sum(r["fell"] for r in rows),
               "mean": {"final_distance_m": float(np.mean([r["final_distance_m"] for r in rows])),
                        "time_to_arrive_s": float(np.mean([r["time_s"] for r in arrived]))
                        if arrived else None},
               "worst": {"final_distance_m": max(r["final_distance_m"] for r in rows)},
               "episodes_detail": rows}
    log(f"summary: {len(arrived)}/{episodes} goals reached within "
        f"{summary['arrive_m']:g} m in {seconds:g} s ({100 * summary['success_rate']:.0f} %), "
        f"falls {summary['falls']}, mean final distance "
        f"{summary['mean']['final_distance_m']:.3f} m")
    return summary


def _write_video(path: str, frames: list, fps: int) -> None:
    import imageio.v2 as imageio
    if path.endswith(".gif"):
        imageio.mimsave(path, frames, duration=1000 / fps)
    else:
        imageio.mimsave(path, frames, fps=fps, macro_block_size=8)


def dump_json(summary: dict) -> str:
    """One-line JSON of the summary without per-episode details (also in nested summaries)."""
    def strip(d):
        return {k: strip(v) if isinstance(v, dict) else v for k, v in d.items()
                if k != "episodes_detail"}
    return json.dumps(strip(summary))
