"""gym_bridge: stable-baselines3 training in PyBullet, or the robot's topics as a Gymnasium env.

``mode:=sim`` trains like ``kraby train`` (train_config, run_dir, timesteps, n_envs, seed,
resume) in a worker thread and publishes the first env's joint_states, odom and tf (odom ->
base_link) at publish_hz for RViz. emergency_stop true pauses training and writes a
checkpoint; false resumes it. Ctrl-C stops with a checkpoint (``resume:=true`` goes on).
When training is done the node exits.

``mode:=real`` wraps the live topics in ``envs.topic_env.RobotTopicEnv`` (actions through the
safety shield, steps at the control period, slow reset to the stance) and runs ``episodes``
episodes of the exported ``policy`` at ``command``, logging distance and speed per episode;
with ``fine_tune_run`` it instead continues that training run on the robot for
``timesteps`` steps (checkpoints in the run, as ``kraby train --resume``).
"""

import math
import os
import sys
import threading
import time

import numpy as np

from kraby_rl import ros
from kraby_rl.core import spec as S
from kraby_rl.nodes import common as C
from kraby_rl.ros.messages import nav_msgs, sensor_msgs, std_msgs, tf2_msgs
from kraby_rl.ros.runner import run_node

MODES = ("sim", "real")
PARAMETERS = [
    ("mode", "sim", "sim: train in PyBullet; real: run episodes on the robot's topics"),
    ("train_config", "", "sim: training YAML ('' = config/train_ppo.yaml)"),
    ("run_dir", "runs/sim_train", "sim: run directory (checkpoints, logs)"),
    ("timesteps", 0, "sim: total environment steps (0 = the config's)"),
    ("n_envs", 0, "sim: parallel envs (0 = the config's)"),
    ("seed", -1, "sim: seed (-1 = the config's)"),
    ("resume", False, "sim: continue run_dir from its newest checkpoint"),
    ("publish_hz", 20.0, "sim: rate of the first env's joint_states/odom/tf [Hz]"),
    ("policy", "walk", "real: exported policy (directory or shipped name)"),
    ("fine_tune_run", "", "real: a training run to fine-tune on the robot for `timesteps` "
     "steps ('' = run the episodes of `policy`)"),
    ("episodes", 1, "real: number of episodes"),
    ("episode_s", 10.0, "real: episode length [s]"),
    ("command", [0.0, 0.0, 0.0], "real: vx [m/s], vy [m/s], yaw rate [rad/s]"),
    ("reset_s", 2.0, "real: time to return to the default stance at reset [s]"),
]


class Stop(KeyboardInterrupt):
    """Raised in the training thread to stop it with a checkpoint (as Ctrl-C does)."""


class GymBridgeNode(ros.Node):
    def __init__(self):
        super().__init__("gym_bridge")
        p = C.declare(self, PARAMETERS)
        C.require(p["mode"] in MODES, "mode", " or ".join(MODES), p["mode"])
        C.require(p["publish_hz"] > 0, "publish_hz", "a positive rate [Hz]", p["publish_hz"])
        C.require(p["episodes"] >= 1, "episodes", "at least 1", p["episodes"])
        C.require(len(p["command"]) == 3 and all(map(math.isfinite, p["command"])), "command",
                  "3 finite numbers [vx, vy, yaw_rate]", p["command"])
        self.p = p
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.status = "starting"
        self.error = None
        self.diag_pub = self.create_publisher(
            C.diagnostic_msgs.DiagnosticArray, "diagnostics", 10)
        self.create_timer(1.0, self.publish_diagnostics)
        if p["mode"] == "sim":
            self.cfg, self.run_dir = self._train_config()
            self.js_pub = self.create_publisher(sensor_msgs.JointState, "joint_states", 10)
            self.odom_pub = self.create_publisher(nav_msgs.Odometry, "odom", 10)
            self.tf_pub = self.create_publisher(tf2_msgs.TFMessage, "tf", 10)
            self.create_subscription(std_msgs.Bool, "emergency_stop", self.on_estop,
                                     C.ESTOP_QOS)
            target = self.train
        else:
            from kraby_rl.envs.topic_env import RobotTopicEnv
            if p["fine_tune_run"]:
                meta = self._fine_tune_config()
                target = self.fine_tune
            else:
                from kraby_rl.core.policy_runtime import ExportedPolicy
                from kraby_rl.resources import resolve_policy
                self.policy = ExportedPolicy(resolve_policy(p["policy"]))
                meta = self.policy.metadata
                target = self.evaluate
            # fine-tuning continues on the run's own reward (its weights and kernel widths)
            run_env = self.cfg.env if p["fine_tune_run"] else {}
            self.env = RobotTopicEnv(self, p["command"], p["episode_s"],
                                     meta["control_period_s"], meta["clock_hz"], p["reset_s"],
                                     spin=False, decoder=S.ActionDecoder.from_metadata(meta),
                                     reward_weights=run_env.get("reward_weights"),
                                     tracking_sigma=run_env.get("tracking_sigma"))
        self.worker = threading.Thread(target=self._run, args=(target,), daemon=True)
        self.worker.start()

    # --- sim: training -----------------------------------------------------------------
    def _train_config(self):
        from kraby_rl.resources import find_config
        from kraby_rl.training.defaults import DEFAULT_CONFIG
        from kraby_rl.training import config as TC
        from kraby_rl.training.train import load_run_config
        p = self.p
        try:
            if p["resume"]:
                return load_run_config(p["run_dir"]), p["run_dir"]
            overrides = {k: v for k, v in (("total_timesteps", p["timesteps"]),
                                           ("n_envs", p["n_envs"])) if v > 0}
            if p["seed"] >= 0:
                overrides["seed"] = p["seed"]
            cfg = TC.load(find_config(p["train_config"] or DEFAULT_CONFIG), overrides)
        except (TC.ConfigError, FileNotFoundError) as exc:
            raise ValueError(f"parameter 'train_config': {exc}") from None
        if cfg.env_id != "kraby_rl/Hexapod-v0":
            raise ValueError(f"parameter 'train_config': expected env_id kraby_rl/Hexapod-v0 "
                             f"(the robot's env), found {cfg.env_id!r}")
        if os.path.exists(os.path.join(p["run_dir"], "config.yaml")):
            raise ValueError(f"parameter 'run_dir': {p['run_dir']!r} already holds a run; "
                             f"set resume:=true to continue it or choose another run_dir")
        return cfg, p["run_dir"]

    def _bridge_callback(self, publish=True):
        from stable_baselines3.common.callbacks import BaseCallback

        from kraby_rl.training.train import save_checkpoint
        node = self

        class Bridge(BaseCallback):
            def __init__(self):
                super().__init__()
                self.next_pub = 0.0

            def _on_step(self):
                if node.stop.is_set():
                    raise Stop()
                if node.paused.is_set():
                    n = save_checkpoint(self.model, node.run_dir)
                    node.get_logger().warning(f"emergency_stop: training paused, checkpoint "
                                              f"at {n} steps")
                    node.status = f"paused at {n} steps"
                    while node.paused.is_set() and not node.stop.is_set():
                        time.sleep(0.05)
                    if node.stop.is_set():
                        raise Stop()
                    node.get_logger().info("emergency_stop released: training resumes")
                node.status = f"training: {self.model.num_timesteps} steps"
                now = time.monotonic()
                if publish and now >= self.next_pub:
                    self.next_pub = now + 1.0 / node.p["publish_hz"]
                    node.publish_env(self.locals["infos"][0])
                return True

        return Bridge()

    def train(self):
        from kraby_rl.training.train import train
        self.status = "training"
        train(self.cfg, self.run_dir, resume=self.p["resume"], progress_bar=False,
              log=lambda m: self.get_logger().info(m), callbacks=[self._bridge_callback()])

    # --- real: fine-tuning on the robot's topics -----------------------------------------
    def _fine_tune_config(self):
        """The run's config with total_timesteps raised by `timesteps`; its control contract."""
        import dataclasses

        from kraby_rl.training.train import latest_checkpoint, load_run_config
        p, run = self.p, self.p["fine_tune_run"]
        try:
            cfg = load_run_config(run)
        except (ValueError, FileNotFoundError) as exc:
            raise ValueError(f"parameter 'fine_tune_run': {exc}") from None
        ckpt = latest_checkpoint(run)
        C.require(ckpt is not None, "fine_tune_run", "a run with a checkpoint", run)
        C.require(cfg.env_id == "kraby_rl/Hexapod-v0", "fine_tune_run",
                  "a run of kraby_rl/Hexapod-v0", cfg.env_id)
        C.require(p["timesteps"] > 0, "timesteps", "a positive number of robot steps",
                  p["timesteps"])
        self.cfg = dataclasses.replace(cfg, total_timesteps=ckpt[0] + p["timesteps"])
        self.run_dir = run
        from kraby_rl.envs.hexapod_env import action_decoder
        return {"control_period_s": cfg.env.get("control_period_s", 0.02),
                "clock_hz": cfg.env.get("clock_hz", 2.0), **action_decoder(cfg.env).metadata()}

    def fine_tune(self):
        from stable_baselines3.common.monitor import Monitor
        from stable_baselines3.common.vec_env import DummyVecEnv

        from kraby_rl.training.train import train
        self.status = "fine-tuning"
        venv = DummyVecEnv([lambda: Monitor(self.env)])
        train(self.cfg, self.run_dir, resume=True, progress_bar=False, venv=venv,
              log=lambda m: self.get_logger().info(m),
              callbacks=[self._bridge_callback(publish=False)])

    def on_estop(self, msg):
        if msg.data and not self.paused.is_set():
            self.paused.set()
        elif not msg.data and self.paused.is_set():
            self.paused.clear()

    def publish_env(self, info):
        stamp = self.get_clock().now().to_msg()
        js = C.joint_state(self, info["q"])
        js.header.stamp = stamp
        self.js_pub.publish(js)
        odom = C.odometry(self, info["base_pos"], info["base_quat"], info["base_velocity"],
                          (0.0, 0.0, info["yaw_rate"]), stamp)
        self.odom_pub.publish(odom)
        self.tf_pub.publish(C.odometry_tf(odom))

    # --- real: episodes on the robot's topics -------------------------------------------
    def evaluate(self):
        log = self.get_logger()
        for ep in range(self.p["episodes"]):
            self.status = f"episode {ep}: resetting"
            obs, info = self.env.reset()
            start = info["position_xy"]
            done, steps = False, 0
            self.status = f"episode {ep}: running"
            while not done and not self.stop.is_set():
                obs, _r, terminated, truncated, info = self.env.step(self.policy.act(obs))
                steps += 1
                done = terminated or truncated
            end = info["position_xy"]
            dist = float(np.linalg.norm(end - start)) if start is not None and end is not None \
                else float("nan")
            t = steps * self.env.dt
            log.info(f"episode {ep}: {t:.1f} s, distance {dist:.3f} m, speed "
                     f"{dist / t if t else 0.0:.3f} m/s, safety {info['safety_state']}"
                     + (" (stopped)" if info["stopped"] else ""))
            if self.stop.is_set():
                raise Stop()

    # --- common -------------------------------------------------------------------------
    def _run(self, target):
        try:
            target()
            self.status = "done"
        except Stop:
            self.status = "stopped"
        except Exception as exc:  # noqa: B902 - report it and end the node, never hang
            self.error = exc
            self.status = f"failed: {exc}"
            self.get_logger().error(f"gym_bridge {self.p['mode']} failed: {exc}")
        finally:
            if not self.stop.is_set():
                ros.try_shutdown()      # ends spin(): the node's work is over

    def publish_diagnostics(self):
        level = C.ERROR if self.error else (C.WARN if self.paused.is_set() else C.OK)
        self.diag_pub.publish(C.diagnostics(self, [C.status(
            "kraby_rl: gym_bridge", level, self.status, {"mode": self.p["mode"]})]))

    def destroy_node(self):
        self.stop.set()
        self.worker.join(timeout=60)
        return super().destroy_node()


def main(args=None):
    """Exit status 0 when training or the episodes finished (or were stopped), 1 when they
    failed, 2 on a configuration error."""
    nodes = []

    def factory():
        nodes.append(GymBridgeNode())
        return nodes[-1]
    status = run_node(factory, args=args, name="gym_bridge")
    if status == 0 and nodes and nodes[0].error is not None:
        status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
