"""The ``kraby`` command line: train, eval, export, servo tools, fake-bus."""

from __future__ import annotations

import argparse
import os
import sys

from kraby_rl.resources import find_config
from kraby_rl.training.defaults import DEFAULT_CONFIG


def _parse_overrides(items):
    """--set items -> nested overrides: ``env.episode_s=5`` -> {"env": {"episode_s": 5}}.

    A mapping value (``env={episode_s: 5}``) is merged into the section, never replaces it
    (see ``training.config.merge``)."""
    import yaml
    from kraby_rl.training.config import ConfigError, merge
    out = {}
    for it in items or []:
        key, sep, value = it.partition("=")
        parts = key.split(".")
        if not sep or not all(parts):
            raise ConfigError(f"--set: expected KEY=VALUE or SECTION.KEY=VALUE, found {it!r}")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: the value {value!r} is not valid YAML "
                              f"({str(exc).splitlines()[0]})") from None
        for part in reversed(parts):
            parsed = {part: parsed}
        out = merge(out, parsed)
    return out


def positive(kind, what):
    """An argparse type: a number > 0 (``what`` names the option in the error)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__} > 0 {what}, "
                                             f"found {text!r}") from None
        if not value > 0 or value != value or value in (float("inf"),):
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__} > 0 {what}, "
                                             f"found {text!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


VIDEO_FORMATS = (".mp4", ".gif")


def check_video_path(path):
    """Refuse a video path before any work is done: known format, existing folder."""
    if path is None:
        return None
    ext = os.path.splitext(path)[1].lower()
    if ext not in VIDEO_FORMATS:
        raise ValueError(f"--video {path!r}: expected a file ending in "
                         f"{' or '.join(VIDEO_FORMATS)}, found {ext or 'no extension'!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"--video {path!r}: the folder {folder!r} does not exist")
    return path


def _cluster_mode(address) -> None:
    """Joining a Ray cluster (``--ray-address``): Ray's multi-node mode, set before anything
    imports Ray (kraby_rl otherwise keeps a Ray of its own on loopback,
    ``training.ray_local``)."""
    if address:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "1")


def cmd_train(args) -> int:
    _cluster_mode(args.ray_address)
    from kraby_rl.training import config as C
    from kraby_rl.training.train import load_run_config, train
    try:
        if args.resume:
            cfg = load_run_config(args.resume)
            run_dir = args.resume
        else:
            overrides = _parse_overrides(args.set)
            if args.timesteps is not None:
                overrides["total_timesteps"] = args.timesteps
            if args.n_envs is not None:
                overrides["n_envs"] = args.n_envs
            if args.seed is not None:
                overrides["seed"] = args.seed
            if args.engine is not None:
                overrides["engine"] = args.engine
            cfg = C.load(find_config(args.config), overrides)
            run_dir = args.run_dir
        if args.ray_address and cfg.engine != "rllib":
            raise C.ConfigError(f"--ray-address: only for engine rllib, the run's engine is "
                                f"{cfg.engine!r}")
        train(cfg, run_dir, resume=bool(args.resume),
              progress_bar=None if not args.no_progress else False,
              ray_address=args.ray_address)
    except (C.ConfigError, FileNotFoundError, FileExistsError) as exc:
        print(f"kraby train: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_eval(args) -> int:
    if args.from_bag:
        return _eval_from_bag(args)
    if not args.policy:
        print("kraby eval: give a POLICY (or --from-bag BAG)", file=sys.stderr)
        return 2
    from kraby_rl.core.policy_runtime import PolicyError
    from kraby_rl.evaluation.evaluate import dump_json, evaluate
    command = args.command
    if args.through_stack and command is None:
        command = [0.15, 0.0, 0.0]
    overrides = None if args.randomized else {"randomize": None}
    randomized = args.randomized
    if args.overlay:
        import yaml
        try:
            with open(args.overlay) as fh:
                over = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as exc:
            print(f"kraby eval: --overlay {args.overlay!r}: {exc}", file=sys.stderr)
            return 2
        if not isinstance(over, dict) or set(over) - {"env"} or \
                not isinstance(over.get("env", {}), dict):
            print(f"kraby eval: --overlay {args.overlay!r}: expected a mapping with one key "
                  f"'env' (HexapodEnv settings), found {over!r}", file=sys.stderr)
            return 2
        overrides = {**(overrides or {}), **over.get("env", {})}
        randomized = randomized or bool(overrides.get("randomize"))
    try:
        check_video_path(args.video)
        summary = evaluate(args.policy, episodes=args.episodes, seconds=args.seconds,
                           command=command, seed=args.seed, video=args.video,
                           env_overrides=overrides, randomized=randomized,
                           report=args.report, record=args.record)
    except (FileNotFoundError, PolicyError, ValueError) as exc:
        print(f"kraby eval: {exc}", file=sys.stderr)
        return 2
    if args.through_stack and summary.get("env_id") != "kraby_rl/Hexapod-v0":
        print(f"kraby eval: --through-stack runs a walking policy in policy_node; "
              f"{args.policy!r} is a {summary.get('env_id')} policy", file=sys.stderr)
        return 2
    if args.through_stack:
        from kraby_rl.stack.through_stack import evaluate_through_stack, side_by_side
        from kraby_rl.resources import resolve_policy
        try:
            policy = resolve_policy(args.policy)
        except ValueError as exc:
            print(f"kraby eval: --through-stack runs policy_node, which needs an exported "
                  f"policy: {exc}", file=sys.stderr)
            return 2
        try:
            stack = evaluate_through_stack(policy, args.episodes, summary["seconds"], command,
                                           log=lambda m: print(m, file=sys.stderr))
        except RuntimeError as exc:
            print(f"kraby eval: {exc}", file=sys.stderr)
            return 1
        print(side_by_side(summary, stack), file=sys.stderr)
        summary = {"env": summary, "through_stack": stack}
    print(dump_json(summary))
    return 0


def _eval_from_bag(args) -> int:
    import json
    from kraby_rl.evaluation.from_bag import figures_from_bag, report_line
    if args.policy:
        print("kraby eval: --from-bag judges a recording; give no POLICY with it",
              file=sys.stderr)
        return 2
    try:
        fig = figures_from_bag(args.from_bag)
    except (OSError, ValueError) as exc:
        print(f"kraby eval: {exc}", file=sys.stderr)
        return 2
    print(report_line(args.from_bag, fig), file=sys.stderr)
    print(json.dumps({"bag": args.from_bag, **fig}))
    return 0


def _sweep_ranges(items, what):
    from kraby_rl.training.config import ConfigError
    from kraby_rl.training.sweep import parse_values
    out = {}
    for it in items:
        key, sep, values = it.partition("=")
        parsed = parse_values(values) if sep and key else []
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in parsed)
        if what == "grid" and parsed:
            out[key] = parsed
        elif parsed and len(parsed) == 2 and numeric and parsed[0] < parsed[1] \
                and (what == "uniform" or parsed[0] > 0):
            out[key] = parsed
        else:
            allowed = ("KEY=V1,V2,..." if what == "grid" else
                       f"KEY=LO,HI with LO < HI{' and LO > 0' if what == 'loguniform' else ''}")
            raise ConfigError(f"--{what}: expected {allowed}, found {it!r}")
    return out


def cmd_sweep(args) -> int:
    _cluster_mode(args.ray_address)
    from kraby_rl.training import sweep
    from kraby_rl.training.config import ConfigError
    try:
        result = sweep.run(
            find_config(args.config), args.sweep_dir, _sweep_ranges(args.grid, "grid"),
            _sweep_ranges(args.uniform, "uniform"), _sweep_ranges(args.loguniform,
                                                                  "loguniform"),
            args.samples, args.seeds, args.metric, args.mode, args.episodes, args.seconds,
            args.command, args.cpus_per_trial, _parse_overrides(args.set), args.resume,
            args.ray_address)
    except (ConfigError, FileNotFoundError, FileExistsError) as exc:
        print(f"kraby sweep: {exc}", file=sys.stderr)
        return 2
    print(sweep.table(result))
    best = result["best"]
    print(f"best: {args.metric} {best[args.metric]:.4f}, {best['run_dir']}" if best
          else "best: none (every trial failed)")
    print(sweep.dump(result))
    return 0 if best else 1


def cmd_export(args) -> int:
    from kraby_rl.training.export import export
    try:
        out = export(args.run, args.out, args.checkpoint)
    except (FileNotFoundError, ValueError) as exc:
        print(f"kraby export: {exc}", file=sys.stderr)
        return 2
    print(f"exported {args.run} -> {out} (policy.npz, policy.json)")
    return 0


def cmd_sysid(args) -> int:
    from kraby_rl.evaluation.sysid import main as sysid_main
    return sysid_main(args.rest)


def cmd_fake_bus(args) -> int:
    from kraby_rl.herkulex.virtual.fake_bus import main as fake_bus_main
    return fake_bus_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kraby", description="Kraby hexapod: train, evaluate, "
                                "export walking policies.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a policy (stable-baselines3, RLlib or EvoTorch)")
    t.add_argument("--config", default=DEFAULT_CONFIG,
                   help=f"training YAML (default config/{DEFAULT_CONFIG})")
    t.add_argument("--run-dir", default="runs/latest", help="where checkpoints and logs go")
    t.add_argument("--timesteps", type=int, help="override total_timesteps")
    t.add_argument("--n-envs", type=int, help="override n_envs")
    t.add_argument("--seed", type=int, help="override seed")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any top-level config key (YAML value)")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run from its newest checkpoint")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bar: a progress line every 10 s instead")
    t.add_argument("--engine", choices=["sb3", "rllib"],
                   help="override engine: sb3 (stable-baselines3) or rllib (RLlib PPO on Ray)")
    t.add_argument("--ray-address", metavar="ADDRESS",
                   help="engine rllib: join this Ray cluster (default: a local Ray for the "
                        "run)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate a policy with plausibility figures")
    e.add_argument("policy", nargs="?",
                   help="export dir, run dir, or 'tripod' (reference gait); not with --from-bag")
    e.add_argument("--from-bag", metavar="BAG",
                   help="the gait figures of a recorded run (kraby record / record:=) instead "
                        "of running a policy: leg odometry over joint_states and imu/data")
    e.add_argument("--episodes", type=positive(int, "(episodes)"), default=5)
    e.add_argument("--seconds", type=positive(float, "[s] (episode length)"),
                   help="episode length [s] (default 20; a navigation policy: its 40)")
    e.add_argument("--command", type=float, nargs=3, metavar=("VX", "VY", "WZ"),
                   help="fixed command [m/s, m/s, rad/s] (default: sampled per episode)")
    e.add_argument("--seed", type=int, default=1000)
    e.add_argument("--video", metavar="FILE", help="record the first episode (.mp4 or .gif)")
    e.add_argument("--report", metavar="DIR",
                   help="write figures (gait diagram, velocity, torque-speed, height/tilt) "
                        "and an index.md into DIR")
    e.add_argument("--record", metavar="DIR",
                   help="write each episode as a rosbag2 bag (MCAP) DIR/episode_<k>: "
                        "joint_states, imu/data, sim/odom, cmd_vel, /clock")
    e.add_argument("--overlay", metavar="YAML",
                   help="env settings over the policy's (e.g. the fitted parameters that "
                        "kraby sysid writes: env: randomize: ranges of zero width)")
    e.add_argument("--randomized", action="store_true",
                   help="evaluate with the policy's training randomisation on (default: off)")
    e.add_argument("--through-stack", action="store_true",
                   help="also run the episodes through the real stack over the virtual bus "
                        "(serial protocol, DDS, shield, estimator, policy_node) and print both "
                        "side by side (command default 0.15 0 0)")
    e.set_defaults(func=cmd_eval)

    x = sub.add_parser("export", help="export a run as a torch-free policy")
    x.add_argument("run", help="training run directory")
    x.add_argument("--out", help="export directory (default RUN/export)")
    x.add_argument("--checkpoint", type=int, metavar="STEPS",
                   help="export the checkpoint at STEPS (RUN/checkpoints/model_STEPS.zip) "
                        "instead of the final model")
    x.set_defaults(func=cmd_export)

    w = sub.add_parser("sweep", help="Ray Tune over a training config: trials ranked by a "
                                     "kraby eval figure")
    w.add_argument("config", help="training YAML")
    w.add_argument("--sweep-dir", default="runs/sweep", help="where the trials go")
    w.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="every value of a (dotted) config key, e.g. "
                        "algo_kwargs.learning_rate=1e-4,3e-4")
    w.add_argument("--uniform", action="append", default=[], metavar="KEY=LO,HI",
                   help="a random value per sample, uniform in [LO, HI]")
    w.add_argument("--loguniform", action="append", default=[], metavar="KEY=LO,HI",
                   help="a random value per sample, log-uniform in [LO, HI]")
    w.add_argument("--samples", type=positive(int, "(--samples)"), default=1,
                   help="random draws of the --uniform/--loguniform keys (each with the "
                        "whole grid)")
    w.add_argument("--seeds", type=int, nargs="+", default=[0], help="each trial per seed")
    w.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a fixed override for every trial (as kraby train --set)")
    w.add_argument("--metric", default="return",
                   help="the kraby eval figure to rank by: return, vx, vy, yaw_rate, falls, "
                        "slip_mean, success_rate, final_distance_m, ... (default return)")
    w.add_argument("--mode", choices=["max", "min"], default="max")
    w.add_argument("--episodes", type=positive(int, "(--episodes)"), default=3)
    w.add_argument("--seconds", type=positive(float, "(--seconds)"), default=10.0,
                   help="evaluation episode length (walking envs)")
    w.add_argument("--command", type=float, nargs=3, default=[0.15, 0.0, 0.0],
                   metavar=("VX", "VY", "WZ"), help="evaluation command (walking envs)")
    w.add_argument("--cpus-per-trial", type=positive(float, "(--cpus-per-trial)"), default=1.0)
    w.add_argument("--ray-address", metavar="ADDRESS",
                   help="run the trials on this Ray cluster (default: a local Ray)")
    w.add_argument("--resume", action="store_true",
                   help="continue the interrupted sweep in --sweep-dir")
    w.set_defaults(func=cmd_sweep)

    from kraby_rl.herkulex import tools as servo_tools
    servo_tools.add_parser(sub)
    from kraby_rl.ros import topic_tool
    topic_tool.add_parser(sub)
    from kraby_rl.ros import bag
    bag.add_parser(sub)
    from kraby_rl.ros import foxglove_server
    foxglove_server.add_parser(sub)
    from kraby_rl.stack import launcher
    launcher.add_parser(sub)
    from kraby_rl.stack import demo
    demo.add_parser(sub)
    sy = sub.add_parser("sysid", add_help=False,
                        help="fit the simulator's servo and world parameters to a recording "
                             "(a bag); --help for options")
    sy.set_defaults(func=cmd_sysid)
    f = sub.add_parser("fake-bus", add_help=False,
                       help="start the virtual Herkulex bus (pty or TCP); --help for options")
    f.set_defaults(func=cmd_fake_bus)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv[:1] in (["fake-bus"], ["sysid"]):   # their own parsers own the options
        args = parser.parse_args(argv[:1])
        args.rest = argv[1:]
    else:
        args = parser.parse_args(argv)
    try:
        if args.command == "topic":
            from kraby_rl.ros import topic_tool
            return topic_tool.run(args)
        if args.command in ("record", "bag", "foxglove"):
            from kraby_rl.ros import bag
            return bag.run(args)
        return args.func(args)
    except KeyboardInterrupt:
        print(f"kraby {args.command}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
