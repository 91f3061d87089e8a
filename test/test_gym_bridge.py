"""gym_bridge: mode:=sim trains (and pauses with a checkpoint on emergency_stop); mode:=real
runs a policy's episodes through the robot's topics (here sim_node + estimator + shield)."""

import json
import os
import sys

import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.ros.messages import diagnostic_msgs, nav_msgs, sensor_msgs, std_msgs
from ros_helpers import Process, processes, ros_node, spin_until
from test_stack_sim import constant_policy

NODE = [sys.executable, "-m"]


def test_sim_mode_trains_publishes_for_rviz_and_pauses_on_estop(tmp_path):
    run = tmp_path / "run"
    bridge = Process(NODE + ["kraby_rl.training.bridge", "--ros-args",
                             "-p", f"run_dir:={run}", "-p", "timesteps:=3072",
                             "-p", "n_envs:=1", "-p", "publish_hz:=20.0"])
    try:
        with ros_node("rviz_stand_in") as node:
            seen = {"js": 0, "odom": None, "status": ""}
            node.create_subscription(sensor_msgs.JointState, "joint_states",
                                     lambda m: seen.__setitem__("js", seen["js"] + 1), 10)
            node.create_subscription(nav_msgs.Odometry, "odom",
                                     lambda m: seen.__setitem__("odom", m), 10)
            node.create_subscription(
                diagnostic_msgs.DiagnosticArray, "diagnostics",
                lambda m: seen.__setitem__("status", m.status[0].message), 10)
            estop = node.create_publisher(std_msgs.Bool, "emergency_stop", 10)
            assert spin_until(node, lambda: seen["js"] >= 10 and seen["odom"], 120), \
                bridge.stderr
            assert 0.05 < seen["odom"].pose.pose.position.z < 0.2
            estop.publish(std_msgs.Bool(data=True))
            assert spin_until(node, lambda: seen["status"].startswith("paused at"), 30), \
                (seen["status"], bridge.stderr)
            with open(run / "checkpoints" / "latest.json") as f:
                paused_at = json.load(f)["timesteps"]
            assert seen["status"] == f"paused at {paused_at} steps"
            count = seen["js"]
            spin_until(node, lambda: False, 1.0)
            assert seen["js"] == count                      # nothing moves while paused
            estop.publish(std_msgs.Bool(data=False))
            assert bridge.wait(timeout=180) == 0, bridge.stderr
        assert (run / "final_model.zip").exists()
        with open(run / "training.json") as f:
            assert json.load(f)["timesteps"] >= 3072
        assert "training resumes" in bridge.stderr
    finally:
        bridge.stop()


def test_sim_mode_refuses_an_existing_run_without_resume(tmp_path):
    (tmp_path / "config.yaml").write_text("algorithm: ppo\n")
    bridge = Process(NODE + ["kraby_rl.training.bridge", "--ros-args",
                             "-p", f"run_dir:={tmp_path}"])
    try:
        assert bridge.wait(timeout=60) == 2
        assert "parameter 'run_dir'" in bridge.stderr and "resume:=true" in bridge.stderr
    finally:
        bridge.stop()


def test_real_mode_runs_episodes_through_the_shield(tmp_path):
    action = np.zeros(18)
    action[J.joint_index("lm_coxa")] = -0.5
    policy = constant_policy(tmp_path / "p", action)
    with processes(lambda *a: Process(NODE + list(a))) as start:
        start("kraby_rl.nodes.sim_node")
        start("kraby_rl.nodes.state_estimator_node")
        start("kraby_rl.nodes.safety_shield_node")
        bridge = start("kraby_rl.training.bridge", "--ros-args", "-p", "mode:=real",
                       "-p", f"policy:={policy}", "-p", "episodes:=2", "-p", "episode_s:=1.5",
                       "-p", "reset_s:=0.5")
        with ros_node("watcher") as node:
            q = {}
            node.create_subscription(sensor_msgs.JointState, "joint_states", lambda m: q.update(
                zip(m.name, m.position)), 10)
            target = J.DEFAULT_POSE[J.joint_index("lm_coxa")] - 0.5 * 0.4
            assert spin_until(node, lambda: abs(q.get("lm_coxa", 0) - target) < 0.03, 60), \
                bridge.stderr
        assert bridge.wait(timeout=60) == 0, bridge.stderr
        log = bridge.stderr
        assert "episode 0: 1.5 s, distance" in log and "episode 1: 1.5 s" in log
        assert "safety OK" in log and "(stopped)" not in log
    assert os.path.exists(policy)


def test_real_mode_fine_tunes_a_run_on_the_robots_topics(tmp_path):
    from kraby_rl.training import config as TC
    from kraby_rl.training.train import latest_checkpoint, train
    run = tmp_path / "run"
    cfg = TC.load(os.path.join(os.path.dirname(os.path.dirname(__file__)), "config",
                               "train_ppo.yaml"),
                  {"total_timesteps": 64, "n_envs": 1, "vec_env": "dummy",
                   "checkpoint_every": 64,
                   "algo_kwargs": {"n_steps": 32, "batch_size": 32, "n_epochs": 1}})
    train(cfg, str(run), progress_bar=False, log=lambda m: None)
    before = latest_checkpoint(str(run))[0]
    with processes(lambda *a: Process(NODE + list(a))) as start:
        start("kraby_rl.nodes.sim_node")
        start("kraby_rl.nodes.state_estimator_node")
        start("kraby_rl.nodes.safety_shield_node")
        bridge = start("kraby_rl.training.bridge", "--ros-args", "-p", "mode:=real",
                       "-p", f"fine_tune_run:={run}", "-p", "timesteps:=64",
                       "-p", "episode_s:=0.5", "-p", "reset_s:=0.3")
        assert bridge.wait(timeout=120) == 0, bridge.stderr
    assert f"resuming {run} from checkpoint at {before} steps" in bridge.stderr
    assert latest_checkpoint(str(run))[0] >= before + 64
    missing = Process(NODE + ["kraby_rl.training.bridge", "--ros-args", "-p",
                              "mode:=real", "-p", f"fine_tune_run:={tmp_path / 'none'}",
                              "-p", "timesteps:=10"])
    try:
        assert missing.wait(timeout=60) == 2
        assert "parameter 'fine_tune_run'" in missing.stderr
    finally:
        missing.stop()
    bare = Process(NODE + ["kraby_rl.nodes.gym_bridge_node", "--ros-args", "-p", "mode:=sim"])
    try:                                # the node module alone has no training jobs
        assert bare.wait(timeout=60) == 2
        assert "sim training needs the training jobs (run the gym_bridge console script)" \
            in bare.stderr
    finally:
        bare.stop()
