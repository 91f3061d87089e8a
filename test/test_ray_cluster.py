"""A two-node Ray cluster simulated on this machine: a head and a second ``ray start
--address`` node in its own process group, both on 127.0.0.1 inside a private network
namespace (``unshare -n``: only a loopback interface exists, so no Ray process can reach or
bind anything else). ``kraby train --engine rllib --ray-address`` joins it; Ray's state API
shows env runners on both nodes; the second node is killed mid-run; the run is not lost."""

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.dirname(sys.executable)

SCRIPT = r"""
set -u
ip link set lo up
export RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1 RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN=$(python3 -c "import secrets; print(secrets.token_hex(32))")
export KRABY_ROS_IMPLEMENTATION=embedded
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 -- -"$p" 2>/dev/null; done; }
trap cleanup EXIT
setsid "$BIN/ray" start --head --port=6379 --num-cpus=1 --include-dashboard=true \
    --dashboard-host=127.0.0.1 --disable-usage-stats --block > "$D/head.log" 2>&1 &
pids+=($!)
"$BIN/python" - <<'PY' || exit 3
import time, ray
t = time.monotonic()
while True:
    try:
        ray.init(address="127.0.0.1:6379", log_to_driver=False); break
    except Exception:
        if time.monotonic() - t > 120: raise
        time.sleep(1)
PY
setsid "$BIN/ray" start --address=127.0.0.1:6379 --num-cpus=2 --block > "$D/worker.log" 2>&1 &
WPID=$!; pids+=($WPID)
"$BIN/python" - <<'PY' || exit 4
import time, ray
ray.init(address="127.0.0.1:6379", log_to_driver=False)
t = time.monotonic()
while len([n for n in ray.nodes() if n["Alive"]]) < 2:
    assert time.monotonic() - t < 120, ray.nodes()
    time.sleep(0.5)
print("nodes", [(n["NodeManagerAddress"], n["Resources"].get("CPU")) for n in ray.nodes()])
PY
cd "$ROOT"
setsid "$BIN/kraby" train --config "$D/cfg.yaml" --run-dir "$D/run" \
    --ray-address 127.0.0.1:6379 --no-progress > "$D/driver.log" 2>&1 &
DPID=$!; pids+=($DPID)
while [ ! -f "$D/run/checkpoints/latest.json" ]; do
    sleep 0.2; kill -0 $DPID 2>/dev/null || break
done
"$BIN/python" - <<'PY' || exit 5
import json
from ray.util.state import list_actors, list_nodes
nodes = [n.node_id for n in list_nodes(address="127.0.0.1:6379") if n.state == "ALIVE"]
runners = list_actors(address="127.0.0.1:6379", filters=[
    ("class_name", "=", "SingleAgentEnvRunner"), ("state", "=", "ALIVE")])
print("placements", json.dumps({n: sum(a.node_id == n for a in runners) for n in nodes}))
PY
kill -0 $DPID 2>/dev/null && \
    echo "driver running at the kill, checkpoint $(cat "$D/run/checkpoints/latest.json")"
echo "stopping the second node (process group $WPID) mid-run"
kill -9 -- -$WPID
wait $DPID; rc=$?
echo "driver exit $rc"
if [ $rc -ne 0 ]; then
    echo "resuming on the head alone"
    "$BIN/kraby" train --resume "$D/run" --ray-address 127.0.0.1:6379 --no-progress \
        > "$D/resume.log" 2>&1 || exit 6
    echo "resumed"
fi
"""


def _can_unshare():
    try:
        r = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if r.returncode == 0 else r.stderr.decode().strip()


def test_training_spans_two_nodes_and_survives_losing_one(tmp_path):
    why = _can_unshare()
    if why:
        pytest.skip(f"needs a private network namespace (unshare -n, as root): {why}")
    total = 4000
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({
        "algorithm": "ppo", "engine": "rllib", "env_id": "kraby_rl/Hexapod-v0",
        "env": {"episode_s": 1.0, "action_mode": "gait_residual"}, "n_envs": 3,
        "net_arch": [16, 16], "total_timesteps": total, "checkpoint_every": 600,
        "algo_kwargs": {"n_steps": 100, "batch_size": 100, "n_epochs": 1}}))
    env = {**os.environ, "BIN": BIN, "D": str(tmp_path), "ROOT": ROOT}
    proc = subprocess.Popen(["unshare", "-n", "bash", "-c", SCRIPT], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=600)
    finally:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in tmp_path.glob("*.log"))
    assert proc.returncode == 0, out + logs
    nodes = [line for line in out.splitlines() if line.startswith("nodes ")][0]
    assert nodes.count("'127.0.0.1'") == 2, nodes            # both nodes on loopback
    placements = json.loads([line for line in out.splitlines()
                             if line.startswith("placements ")][0].split(" ", 1)[1])
    assert len(placements) == 2 and all(n >= 1 for n in placements.values()), placements
    assert sum(placements.values()) == 3
    running = [line for line in out.splitlines() if line.startswith("driver running at the kill")]
    assert running, out                                   # the node was lost mid-run
    assert json.loads(running[0].split("checkpoint ", 1)[1])["timesteps"] < total
    with open(tmp_path / "run" / "training.json") as fh:
        assert json.load(fh)["timesteps"] >= total               # the run was not lost
    driver = (tmp_path / "driver.log").read_text()
    assert "ray: joined the cluster at 127.0.0.1:6379 (3 CPUs, 2 nodes)" in driver
    continued = "driver exit 0" in out
    print("after losing the second node the run "
          + ("continued on the head" if continued else "resumed from its last checkpoint"))
