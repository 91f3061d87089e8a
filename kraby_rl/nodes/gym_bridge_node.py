"""gym_bridge: stable-baselines3 training in PyBullet, or the robot's topics as a Gymnasium env.

``mode:=sim`` trains like ``kraby train`` (train_config, run_dir, timesteps, n_envs, seed,
resume) in a worker thread and publishes the first env's joint_states, odom and tf (odom ->
base_link) at publish_hz for RViz. emergency_stop true pauses training and writes a
checkpoint; false resumes it. Ctrl-C stops with a checkpoint (``resume:=true`` goes on).
When training is done the node exits.

The training itself (stable-baselines3) is ``kraby_rl.training.bridge``'s, which is also
the ``gym_bridge`` console script; this module never imports training or the CLI.

``mode:=real`` wraps the live topics in ``envs.topic_env.RobotTopicEnv`` (actions through the
safety shield, steps at the control period, slow reset to the stance) and runs ``episodes``
episodes of the exported ``policy`` at ``command``, logging distance and speed per episode;
with ``fine_tune_run`` it instead continues that training run on the robot for
``timesteps`` steps (checkpoints in the run, as ``kraby train --resume``).
"""

import math
import sys
import threading

import numpy as np

from kraby_rl import ros
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
    """Raised in the worker thread to stop it (training: with a checkpoint, as Ctrl-C)."""


class GymBridgeNode(ros.Node):
    """The ROS side of gym_bridge.

    Args:
        jobs: the training jobs, ``{"sim": cls, "fine_tune": cls}`` (``training.bridge``
            gives them: this module never imports training). ``cls(node)`` reads the
            node's parameters (ValueError naming one when it is wrong) and ``run()`` works
            in the worker thread; a fine-tuning job also gives the ``contract`` and reward
            (``reward_weights``, ``tracking_sigma``) of the topic env.
    """

    def __init__(self, jobs: dict | None = None):
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
        kind = ("sim" if p["mode"] == "sim" else "fine_tune" if p["fine_tune_run"]
                else None)
        job = None
        if kind is not None:
            if kind not in (jobs or {}):
                raise ValueError(f"parameter 'mode': {p['mode']} "
                                 f"{'training' if kind == 'sim' else 'fine-tuning'} needs the "
                                 f"training jobs (run the gym_bridge console script)")
            job = jobs[kind](self)
        if p["mode"] == "sim":
            self.js_pub = self.create_publisher(sensor_msgs.JointState, "joint_states", 10)
            self.odom_pub = self.create_publisher(nav_msgs.Odometry, "odom", 10)
            self.tf_pub = self.create_publisher(tf2_msgs.TFMessage, "tf", 10)
            self.create_subscription(std_msgs.Bool, "emergency_stop", self.on_estop,
                                     C.ESTOP_QOS)
            target = job.run
        else:
            from kraby_rl.envs.topic_env import RobotTopicEnv
            if job is not None:
                contract, weights, sigma = job.contract, job.reward_weights, job.tracking_sigma
                target = job.run
            else:
                from kraby_rl.core.policy_runtime import ExportedPolicy, PolicyError
                from kraby_rl.resources import resolve_policy
                try:
                    self.policy = ExportedPolicy(resolve_policy(p["policy"]))
                    contract = self.policy.contract()
                except PolicyError as exc:
                    raise ValueError(f"parameter 'policy': {exc}") from None
                weights = sigma = None
                target = self.evaluate
            self.env = RobotTopicEnv(self, contract, p["command"], p["episode_s"],
                                     p["reset_s"], spin=False, reward_weights=weights,
                                     tracking_sigma=sigma)
        self.worker = threading.Thread(target=self._run, args=(target,), daemon=True)
        self.worker.start()

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


def run_bridge(jobs: dict | None, args=None) -> int:
    """Run the node; exit status 0 when training or the episodes finished (or were
    stopped), 1 when they failed, 2 on a configuration error."""
    nodes = []

    def factory():
        nodes.append(GymBridgeNode(jobs))
        return nodes[-1]
    status = run_node(factory, args=args, name="gym_bridge")
    if status == 0 and nodes and nodes[0].error is not None:
        status = 1
    return status


def main(args=None):
    """gym_bridge without the training jobs (``mode:=real`` episodes only); the console
    script is ``kraby_rl.training.bridge:main``, which adds them."""
    sys.exit(run_bridge(None, args=args))


if __name__ == "__main__":
    main()
