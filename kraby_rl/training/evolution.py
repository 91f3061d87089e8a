"""PGPE with EvoTorch: ``kraby train`` when the config says ``algorithm: pgpe``.

Two things can be searched (the config's ``pgpe.target``):

* ``linear``: a linear policy ``a = W x + b`` of the normalised observation, the classic
  evolution-strategies recipe, on any continuous kraby env (EvoTorch's ``GymNE``: the
  fitness is the episode return, running observation statistics are collected by every
  actor and merged);
* ``gait``: the tripod gait's own parameters (step frequency ``clock_hz``, ``gait_duty``,
  ``gait_lift_m``, ``gait_stride_scale``) for the fastest gait that
  stays plausible at a fixed forward command (``pgpe.command``): fitness = progress speed
  along the command minus penalties for stance slip over ``SLIP_MARGIN``, step frequency
  over ``FREQ_MARGIN``, torque-speed envelope violations and falls (``gait_fitness``).
  With ``pgpe.fitness: tracking`` the progress counts only up to the command and heading
  drift over ``DRIFT_MARGIN_DEG`` is penalised too: the gait that follows the command best
  over whatever the env draws per episode (terrain, faults). The result is a gait config
  ``HexapodEnv`` accepts, exported as a ``gait_residual`` policy whose residual is zero.

Fitness is evaluated in parallel by EvoTorch's Ray actors (``pgpe.num_actors``; a local
Ray is started for the run on 127.0.0.1 only, dashboard and usage reports off:
``start_ray``). ``algo_kwargs`` are
keyword arguments of ``evotorch.algorithms.PGPE`` (popsize, center_learning_rate,
stdev_learning_rate, stdev_init, optimizer, ...). ``total_timesteps`` bounds the
environment steps of all evaluations together; each generation's figures are printed and
logged to TensorBoard (``tb/``). Checkpoints (``checkpoints/pgpe_<N>.pt``: the search
distribution's centre and spread, the optimizer's state, observation statistics, the
generation) use the same ``latest.json`` marker as the stable-baselines3 runs, so
``--resume`` continues the search where it stopped.
"""

from __future__ import annotations

import functools
import json
import os
import time

import numpy as np

from kraby_rl.core import contract as K
from kraby_rl.training.config import TrainConfig
from kraby_rl.training.ray_local import start_ray

TARGETS = ("linear", "gait")
GAIT_BOUNDS = {"clock_hz": (1.0, 3.0), "gait_duty": (0.5, 0.85),
               "gait_lift_m": (0.01, 0.06), "gait_stride_scale": (0.8, 1.25)}
"""Searched gait parameters and their ranges (the step frequency stays <= 3 Hz)."""
FEEDBACK_BOUNDS = {"gait_heading_gain": (0.0, 5.0), "gait_level_gain": (0.0, 2.0)}
"""With ``pgpe.feedback: true`` the gait's heading hold and levelling gains are searched too
(contract keys; the env must observe spec version 3)."""
LIMP_BOUNDS = {"gait_limp_shift": (0.0, 0.8), "gait_limp_crouch_m": (0.0, 0.03)}
"""With ``pgpe.limp: true`` how the gait carries the body over fewer legs is searched too
(contract keys; the env must observe spec version 4 and set ``gait_limp_threshold``)."""
SLIP_MARGIN = 0.025
"""[m/s] stance slip the gait fitness starts penalising (the plausibility limit is 0.03)."""
FREQ_MARGIN = 2.9
"""[Hz] measured step frequency the gait fitness starts penalising (limit 3 Hz)."""
DRIFT_MARGIN_DEG = 10.0
"""[deg] heading drift in an episode that ``tracking`` fitness starts penalising (the
robustness gate's limit is 20 deg in 20 s)."""
FITNESS = ("speed", "tracking")
PGPE_KEYS = {
    "target": "linear (a linear policy) or gait (the tripod gait's parameters)",
    "num_actors": "parallel Ray actors evaluating fitness (1: in this process)",
    "num_episodes": "episodes per fitness evaluation",
    "command": "gait: the forward command [vx, vy, yaw_rate] the gait is tuned at",
    "fitness": "gait: speed (the fastest plausible gait) or tracking (progress up to the "
               "command, heading drift penalised)",
    "feedback": "gait: true to search the heading hold and levelling gains too (env "
                "spec_version 3)",
    "limp": "gait: true to search the limp-leg wave's body shift and crouch too (env "
            "spec_version 4 and a gait_limp_threshold)",
}
PGPE_DEFAULTS = {"target": "linear", "num_actors": 2, "num_episodes": 1,
                 "command": [0.4, 0.0, 0.0], "fitness": "speed", "feedback": False,
                 "limp": False}


def pgpe_section(cfg: TrainConfig) -> dict:
    """The config's ``pgpe`` section with defaults filled in, checked (ValueError names the
    key, the value and what is allowed)."""
    given = dict(cfg.pgpe or {})
    unknown = sorted(set(given) - set(PGPE_KEYS))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; allowed: "
                         + "; ".join(f"{k} ({v})" for k, v in PGPE_KEYS.items()))
    sec = {**PGPE_DEFAULTS, **given}
    if sec["target"] not in TARGETS:
        raise ValueError(f"target: expected one of {TARGETS}, found {sec['target']!r}")
    if sec["fitness"] not in FITNESS:
        raise ValueError(f"fitness: expected one of {FITNESS}, found {sec['fitness']!r}")
    for key in ("num_actors", "num_episodes"):
        v = sec[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{key}: expected a whole number >= 1, found {v!r}")
    c = sec["command"]
    if not (isinstance(c, list) and len(c) == 3
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in c)):
        raise ValueError(f"command: expected [vx, vy, yaw_rate], found {c!r}")
    if sec["target"] == "gait" and cfg.env_id != "kraby_rl/Hexapod-v0":
        raise ValueError(f"target gait: tunes the tripod gait of kraby_rl/Hexapod-v0, "
                         f"found env_id {cfg.env_id!r}")
    for key in ("feedback", "limp"):
        if not isinstance(sec[key], bool):
            raise ValueError(f"{key}: expected true or false, found {sec[key]!r}")
    if sec["feedback"] and (sec["target"] != "gait"
                            or int(cfg.env.get("spec_version", 1)) < 3):
        raise ValueError(f"feedback: searches the gait's feedback gains, which need target "
                         f"gait and env.spec_version 3, found target {sec['target']!r} and "
                         f"spec_version {cfg.env.get('spec_version', 1)!r}")
    if sec["limp"] and (sec["target"] != "gait" or int(cfg.env.get("spec_version", 1)) < 4
                        or not cfg.env.get("gait_limp_threshold")):
        raise ValueError(f"limp: searches the limp-leg wave's shift and crouch, which need "
                         f"target gait, env.spec_version 4 and env.gait_limp_threshold > 0, "
                         f"found target {sec['target']!r}, spec_version "
                         f"{cfg.env.get('spec_version', 1)!r} and gait_limp_threshold "
                         f"{cfg.env.get('gait_limp_threshold', 0.0)!r}")
    return sec


def gait_bounds(sec: dict) -> dict:
    """The searched parameters and their ranges of a (checked) ``pgpe`` section."""
    return {**GAIT_BOUNDS, **(FEEDBACK_BOUNDS if sec.get("feedback") else {}),
            **(LIMP_BOUNDS if sec.get("limp") else {})}


def check_algo_kwargs(given: dict) -> None:
    """Raise ValueError for a key that ``evotorch.algorithms.PGPE`` does not take."""
    import inspect
    from evotorch.algorithms import PGPE
    params = [p for p in inspect.signature(PGPE).parameters if p not in ("self", "problem")]
    for key in given:
        if key not in params:
            raise ValueError(f"unknown key {key!r} (value {given[key]!r}); allowed keys: "
                             f"{', '.join(sorted(params))}")


# --- the gait target ---------------------------------------------------------------------
def decode_gait(x, bounds: dict = GAIT_BOUNDS) -> dict:
    """Gait parameters from a search vector: each entry in [-1, 1] maps linearly onto its
    range in ``bounds`` (clipped outside it)."""
    x = np.clip(np.asarray(x, dtype=float), -1.0, 1.0)
    if x.shape != (len(bounds),):
        raise ValueError(f"a gait search vector has {len(bounds)} entries "
                         f"({', '.join(bounds)}), found shape {x.shape}")
    return {k: float(lo + (hi - lo) * (v + 1.0) / 2.0)
            for v, (k, (lo, hi)) in zip(x, bounds.items())}


def encode_gait(params: dict, bounds: dict = GAIT_BOUNDS) -> np.ndarray:
    """The search vector of gait parameters (inverse of ``decode_gait``)."""
    return np.array([2.0 * (params[k] - lo) / (hi - lo) - 1.0
                     for k, (lo, hi) in bounds.items()])


def gait_fitness(figures: dict, command, tracking: bool = False) -> float:
    """Fitness of one gait episode: progress speed along the command [m/s] minus
    ``10 * (slip - SLIP_MARGIN)+`` ``+ 0.5 * (step frequency - FREQ_MARGIN)+``
    ``+ 10 * envelope violation fraction`` ``+ 1`` if it fell. ``tracking``: the progress
    counts up to the commanded speed only, and ``0.05 * (drift - DRIFT_MARGIN_DEG)+ / 10``
    is subtracted (drift: the episode's heading change [deg])."""
    c = np.asarray(command[:2], dtype=float)
    direction = c / np.linalg.norm(c) if np.linalg.norm(c) > 0 else np.array([1.0, 0.0])
    speed = float(direction @ [figures["vx"], figures["vy"]])
    if tracking:
        speed = min(speed, float(np.linalg.norm(c))) - 0.05 * max(
            0.0, abs(figures["heading_change_deg"]) - DRIFT_MARGIN_DEG) / 10.0
    return (speed - 10.0 * max(0.0, figures["slip_mean"] - SLIP_MARGIN)
            - 0.5 * max(0.0, figures["step_freq_hz"] - FREQ_MARGIN)
            - 10.0 * figures["envelope_violations"] - (1.0 if figures["fell"] else 0.0))


def gait_episodes(params: dict, env_kwargs: dict, command, seeds) -> list:
    """The episodes' gait figures (``evaluation.evaluate.run_episode``) of the zero-residual
    tripod gait with ``params``."""
    import gymnasium as gym
    import kraby_rl.envs  # noqa: F401
    from kraby_rl.evaluation.evaluate import run_episode
    env = gym.make("kraby_rl/Hexapod-v0", **{**env_kwargs, **params,
                                             "action_mode": "gait_residual"})
    zero = np.zeros(env.action_space.shape)
    try:
        return [run_episode(env, lambda obs: zero, int(s), command=command) for s in seeds]
    finally:
        env.close()


def _gait_problem_class():
    import torch
    from evotorch import Problem

    class GaitProblem(Problem):
        """Fitness of tripod-gait parameter vectors (``gait_fitness``); each evaluation's
        mean speed, slip, step frequency and falls ride along as evaluation data."""

        def __init__(self, env_kwargs, command, seeds, num_actors, tracking=False,
                     bounds=GAIT_BOUNDS):
            super().__init__("max", solution_length=len(bounds), initial_bounds=(-1, 1),
                             dtype=torch.float32, eval_data_length=5,
                             num_actors=num_actors if num_actors > 1 else None)
            self.env_kwargs, self.command, self.seeds = dict(env_kwargs), command, seeds
            self.tracking = tracking
            self.bounds = dict(bounds)

        def _evaluate(self, solution):
            params = decode_gait(solution.values.detach().cpu().numpy(), self.bounds)
            eps = gait_episodes(params, self.env_kwargs, self.command, self.seeds)
            fit = float(np.mean([gait_fitness(e, self.command, self.tracking) for e in eps]))
            data = [np.mean([e[k] for e in eps]) for k in ("vx", "slip_mean",
                                                           "step_freq_hz",
                                                           "envelope_violations")]
            data.append(float(sum(e["fell"] for e in eps)))
            solution.set_evaluation(fit, torch.tensor(data, dtype=torch.float32))

    return GaitProblem


# --- training ----------------------------------------------------------------------------
def _env_factory(cfg: TrainConfig):
    from kraby_rl.training.train import make_env
    return functools.partial(make_env, cfg.env_id, **cfg.env)


def _problem(cfg: TrainConfig, sec: dict):
    if sec["target"] == "gait":
        seeds = [cfg.seed + k for k in range(sec["num_episodes"])]
        bounds = gait_bounds(sec)
        env_kwargs = {k: v for k, v in cfg.env.items() if k not in bounds}
        return _gait_problem_class()(env_kwargs, list(map(float, sec["command"])), seeds,
                                     sec["num_actors"], sec["fitness"] == "tracking", bounds)
    from evotorch.neuroevolution import GymNE
    return GymNE(env=_env_factory(cfg), network="Linear(obs_length, act_length)",
                 observation_normalization=cfg.normalize_obs,
                 num_episodes=sec["num_episodes"],
                 num_actors=sec["num_actors"] if sec["num_actors"] > 1 else None)


def _searcher(cfg: TrainConfig, problem, sec: dict, state: dict | None):
    from evotorch.algorithms import PGPE
    kwargs = {"popsize": 16, "center_learning_rate": 0.05, "stdev_learning_rate": 0.1,
              **({} if "radius_init" in cfg.algo_kwargs else {"stdev_init": 0.1}),
              **cfg.algo_kwargs}
    if sec["target"] == "gait" and "center_init" not in kwargs:
        bounds = gait_bounds(sec)
        kwargs["center_init"] = encode_gait(K.DEFAULT.metadata()
                                            | {k: v for k, v in cfg.env.items()
                                               if k in bounds}, bounds).tolist()
    if sec["target"] == "linear" and "center_init" not in kwargs:
        kwargs["center_init"] = [0.0] * problem.solution_length
    if state is not None:
        kwargs["center_init"] = state["center"]
        kwargs.pop("radius_init", None)
        kwargs["stdev_init"] = state["stdev"]
    searcher = PGPE(problem, **kwargs)
    if state is not None and state.get("optimizer") is not None:
        searcher._optimizer = state["optimizer"]
    return searcher


def _ckpt_path(run_dir: str, n: int) -> str:
    from kraby_rl.training.train import CKPT_DIR
    return os.path.join(run_dir, CKPT_DIR, f"pgpe_{n}.pt")


def _save(run_dir, searcher, problem, sec, generation, steps, wall_s, final=False):
    import torch
    from kraby_rl.training.train import CKPT_DIR, _atomic_write, write_marker
    state = {"center": searcher.status["center"].detach().cpu().clone(),
             "stdev": searcher.status["stdev"].detach().cpu().clone(),
             "optimizer": searcher._optimizer, "generation": generation, "steps": steps,
             "target": sec["target"],
             "obs_stats": (problem.get_observation_stats()
                           if sec["target"] == "linear" and problem.observation_normalization
                           else None)}
    d = os.path.join(run_dir, CKPT_DIR)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(run_dir, "final_pgpe.pt") if final else _ckpt_path(run_dir, steps)
    _atomic_write(path, lambda p: torch.save(state, p))
    if not final:
        write_marker(run_dir, steps, wall_s)
    return path


def load_state(run_dir: str, checkpoint: int | None = None) -> dict:
    """The saved search state of a PGPE run: the checkpoint at ``checkpoint`` steps, else
    the final one, else the newest checkpoint."""
    import torch
    from kraby_rl.training.train import latest_checkpoint
    if checkpoint is not None:
        path = _ckpt_path(run_dir, checkpoint)
    elif os.path.exists(os.path.join(run_dir, "final_pgpe.pt")):
        path = os.path.join(run_dir, "final_pgpe.pt")
    else:
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise FileNotFoundError(f"{run_dir!r} has neither final_pgpe.pt nor a checkpoint")
        path = _ckpt_path(run_dir, ckpt[0])
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir!r}: {path} missing")
    return torch.load(path, weights_only=False)


def _generation_figures(searcher, problem, sec):
    """(text, scalars) of the generation just evaluated."""
    pop = searcher.population
    evals = pop.evals.detach().cpu().numpy()
    fit = evals[:, 0]
    scalars = {"pgpe/fitness_mean": float(fit.mean()), "pgpe/fitness_best": float(fit.max()),
               "pgpe/stdev_mean": float(searcher.status["stdev"].mean())}
    text = f"fitness mean {fit.mean():.3f}, best {fit.max():.3f}"
    if sec["target"] == "gait":
        k = int(np.argmax(fit))
        vx, slip, freq, env_v, falls = (float(v) for v in evals[k, 1:])
        centre = decode_gait(searcher.status["center"].detach().cpu().numpy(),
                             gait_bounds(sec))
        scalars.update({"gait/best_vx": vx, "gait/best_slip": slip, "gait/best_step_freq": freq,
                        **{f"gait/center_{n}": v for n, v in centre.items()}})
        text += (f"; best: {vx:.3f} m/s, slip {slip:.3f} m/s, {freq:.2f} Hz, falls "
                 f"{falls:.0f}; centre " + ", ".join(f"{n} {v:.3f}" for n, v in centre.items()))
    return text, scalars


def train_pgpe(cfg: TrainConfig, run_dir: str, resume: bool, log=print) -> str:
    """Run (or resume) a PGPE search into ``run_dir``; returns the final state's path."""
    import torch
    from torch.utils.tensorboard import SummaryWriter
    from kraby_rl.training.train import _marker, latest_checkpoint
    sec = pgpe_section(cfg)
    import logging
    logging.getLogger("evotorch").setLevel(logging.WARNING)   # its INFO: one line per object
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    state = None
    wall0 = 0.0
    if resume:
        n = latest_checkpoint(run_dir)[0]
        state = load_state(run_dir, n)
        wall0 = float((_marker(run_dir) or {}).get("wall_s", 0.0))
        log(f"resuming {run_dir} from checkpoint at {n} steps (generation "
            f"{state['generation']})")
    started_ray = start_ray(sec["num_actors"], log) if sec["num_actors"] > 1 else False
    try:
        problem = _problem(cfg, sec)
        if state is not None and state.get("obs_stats") is not None:
            problem.set_observation_stats(state["obs_stats"])
        searcher = _searcher(cfg, problem, sec, state)
        writer = SummaryWriter(os.path.join(run_dir, "tb", "pgpe"))
        generation = state["generation"] if state else 0
        steps = state["steps"] if state else 0
        next_ckpt = (steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every
        t0 = time.time()
        while steps < cfg.total_timesteps:
            gen_t = time.time()
            searcher.step()
            generation += 1
            steps += _generation_steps(searcher, problem, sec, cfg)
            text, scalars = _generation_figures(searcher, problem, sec)
            for name, v in scalars.items():
                writer.add_scalar(name, v, steps)
            writer.flush()
            log(f"generation {generation}: {steps}/{cfg.total_timesteps} steps, {text} "
                f"({time.time() - gen_t:.1f} s)")
            if steps >= next_ckpt:
                _save(run_dir, searcher, problem, sec, generation, steps,
                      wall0 + time.time() - t0)
                next_ckpt = (steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every
        writer.close()
        wall = wall0 + time.time() - t0
        _save(run_dir, searcher, problem, sec, generation, steps, wall)
        final = _save(run_dir, searcher, problem, sec, generation, steps, wall,
                      final=True)
        with open(os.path.join(run_dir, "training.json"), "w") as fh:
            json.dump({"timesteps": steps, "generations": generation,
                       "last_session_wall_s": time.time() - t0, "wall_s": wall,
                       "algorithm": "pgpe", "target": sec["target"], "seed": cfg.seed}, fh)
        log(f"done: {generation} generations, {steps} env steps in {time.time() - t0:.0f} s; "
            f"next: kraby export {run_dir}")
        return final
    finally:
        if started_ray:
            import ray
            ray.shutdown()


def _generation_steps(searcher, problem, sec, cfg) -> int:
    """Environment steps the generation just evaluated took."""
    if sec["target"] == "linear":
        total = int(problem.interaction_count)
        prev = getattr(problem, "_kraby_counted", 0)
        problem._kraby_counted = total
        return total - prev
    seconds = float(cfg.env.get("episode_s", 20.0))
    period = float(cfg.env.get("control_period_s", K.CONTROL_PERIOD_S))
    return len(searcher.population) * sec["num_episodes"] * int(round(seconds / period))


# --- export ------------------------------------------------------------------------------
def export_pgpe(run_dir: str, cfg: TrainConfig, out_dir: str, checkpoint: int | None,
                meta_common: dict) -> str:
    """Write the torch-free export of a PGPE run: the linear layer (with its observation
    statistics), or the tuned gait as a zero-residual ``gait_residual`` policy."""
    from kraby_rl.core import spec as S
    from kraby_rl.training.config import contract_metadata
    from kraby_rl.training.export import write_export
    state = load_state(run_dir, checkpoint)
    sec = pgpe_section(cfg)
    center = state["center"].numpy().astype(float)
    if sec["target"] == "gait":
        params = decode_gait(center, gait_bounds(sec))
        env = {**cfg.env, **params, "action_mode": "gait_residual"}
        contract = contract_metadata(cfg.env_id, env)
        n = int(contract["obs_size"])
        layers = [(np.zeros((S.ACTION_SIZE, n)), np.zeros(S.ACTION_SIZE), "none")]
        meta = {**contract, **meta_common, "env": env, "gait": params,
                "description": f"the tripod gait tuned by PGPE at command {sec['command']}"}
        return write_export(out_dir, layers, np.zeros(n), np.ones(n), meta)
    contract = contract_metadata(cfg.env_id, cfg.env)
    stats = state["obs_stats"]
    n_obs = int(contract["obs_size"])
    n_act = int(contract["action_size"])
    W = center[:n_obs * n_act].reshape(n_act, n_obs)
    b = center[n_obs * n_act:]
    if stats is not None and stats.count > 0:
        mean = np.asarray(stats.mean, dtype=float)
        var = np.asarray(stats.stdev, dtype=float) ** 2
    else:
        mean, var = np.zeros(n_obs), np.ones(n_obs)
    meta = {**contract, **meta_common, "env": cfg.env}
    return write_export(out_dir, [(W, b, "none")], mean, var, meta)
