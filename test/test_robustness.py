"""The robustness gate: its verdicts, and a short real run side by side."""

import json

from kraby_rl.evaluation import robustness as RB


def row(progress, falls=0, drift=0.0, slip=0.01, hz=2.0, env=0.0, commanded=0.15):
    return {"progress": progress, "commanded": commanded, "falls": falls, "drift_deg": drift,
            "slip": slip, "step_hz": hz, "envelope": env}


def test_the_gait_fails_a_row_by_falling_stalling_or_drifting():
    assert not RB.gait_fails(row(0.14))
    assert RB.gait_fails(row(0.14, falls=1))
    assert RB.gait_fails(row(0.049))                 # < 0.05 m/s at 0.15 m/s
    assert RB.gait_fails(row(0.14, drift=25.0))
    assert not RB.gait_fails(row(0.4, drift=None, commanded=0.5))   # turning: no drift


def test_the_policy_must_rescue_where_the_gait_fails_and_be_plausible_everywhere():
    ok, why = RB.policy_passes(row(0.06), row(0.14))          # gait fine: no speed demand
    assert ok and why == []
    ok, why = RB.policy_passes(row(0.09), row(0.01))          # gait stalls: 0.10 needed
    assert not ok and why == ["progress 0.090 < 0.100"]
    ok, why = RB.policy_passes(row(0.12, drift=21.0), row(0.14, drift=30.0))
    assert not ok and why == ["drift 21 deg"]
    ok, why = RB.policy_passes(row(0.12, slip=0.031, hz=3.1, env=0.001, falls=1), row(0.14))
    assert not ok and why == ["1 fall(s)", "slip 0.031 m/s", "steps 3.10 Hz",
                              "envelope 0.10 %"]


def test_scenarios_cover_the_issue_list():
    names = set(RB.SCENARIOS)
    for n in ["flat", "rough 1 cm", "rough 3 cm", "step up 2 cm", "step up 5 cm",
              "step down 5 cm", "slope +10 deg", "slope -15 deg", "limp leg lf",
              "limp leg rf", "limp legs lf+rm", "all servos strength 0.5",
              "payload 0.5 kg", "friction 0.3", "pushes 0.3 m/s"]:
        assert n in names
    assert sum(n.startswith("limp leg ") for n in names) == 6


def test_a_short_run_compares_both_contestants_row_by_row(capsys):
    code = RB.main(["tripod", "--seeds", "1", "--seconds", "2", "--scenario", "flat",
                    "--scenario", "limp leg lm"])
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert [r["scenario"] for r in summary["rows"]] == ["flat"] * 3 + ["limp leg lm"]
    flat = summary["rows"][0]
    assert flat["gait"]["progress"] > 0.1 and flat["gait"] == flat["policy"]
    assert code == (0 if summary["passed"] else 1)
    assert RB.main(["tripod", "--scenario", "lava"]) == 2
    assert "unknown scenario(s) ['lava']" in capsys.readouterr().err


def test_curve_wall_time_sums_sessions_up_to_each_resume():
    from kraby_rl.evaluation.curve import wall_at
    # session 1 ran 0 -> 66k in 330 s, was killed; session 2 resumed at 50k (first record at
    # 52k, 1000 s later in wall-clock time) and ran on
    s1 = [(2000, 100.0), (50000, 340.0), (52000, 350.0), (66000, 420.0)]
    s2 = [(52000, 5000.0), (100000, 5200.0)]
    assert wall_at([s1], 50000) == 240.0
    assert wall_at([s1, s2], 50000) == 240.0
    # session 1 counts up to 52k (250 s), then session 2's own time
    assert wall_at([s1, s2], 52000) == 250.0
    assert wall_at([s1, s2], 100000) == 450.0
    assert wall_at([s1, s2], 76000) == 350.0
    assert wall_at([s1, s2], 200000) is None


def test_both_gates_walk_a_terrain_policy_on_the_ground_and_servos_they_name(monkeypatch):
    """A policy trained on terrain and faults carries those sections in its env config; the
    flat gate must still be flat and healthy, and a robustness row only what it names."""
    import gymnasium as gym
    import numpy as np
    from kraby_rl.evaluation import evaluate as EV
    from kraby_rl.evaluation import gate as GT
    trained = {"action_mode": "gait_residual", "randomize": {"friction": [0.5, 1.0]},
               "terrain": {"kinds": {"steps": 1}, "step_m": [0.05, 0.05]},
               "faults": {"kinds": {"limp_leg": 1}}, "curriculum": {"levels": 3}}
    made = []
    real_make = gym.make

    def make(env_id, **kw):
        made.append(kw)
        return real_make(env_id, **{k: v for k, v in kw.items() if k != "curriculum"})
    monkeypatch.setattr(gym, "make", make)
    RB.contest(lambda obs: np.zeros(18), "limp leg lm", [0], 0.2, trained)
    assert not {"terrain", "faults", "curriculum", "randomize"} & set(made[-1])
    calls = []
    fake = {"falls": 0, "mean": {"vx": 0.15, "vy": 0.1, "yaw_rate": 0.5},
            "worst": {"slip_mean": 0.0, "step_freq_hz": 2.0, "envelope_violations": 0},
            "episodes_detail": [{"heading_change_deg": 0.0}]}

    def evaluate(policy, episodes, seconds, cmd, env_overrides=None, randomized=False, **kw):
        calls.append((randomized, {**trained, **env_overrides}))
        return fake

    class Stop(Exception):
        pass

    def through_stack(*a, **kw):
        raise Stop
    from kraby_rl.stack import through_stack as TS
    monkeypatch.setattr(EV, "evaluate", evaluate)
    monkeypatch.setattr(TS, "evaluate_through_stack", through_stack)
    try:
        GT.run("walk", log=lambda m: None)
    except Stop:
        pass
    assert len(calls) == 12 and sum(r for r, _ in calls) == 6
    for randomized, env in calls:
        assert env["terrain"] is None and env["faults"] is None and env["curriculum"] is None
        assert (env["randomize"] is None) != randomized


def test_the_curve_finds_the_checkpoints_of_sb3_and_pgpe_runs(tmp_path):
    from kraby_rl.training.train import CKPT_DIR, checkpoint_steps
    d = tmp_path / CKPT_DIR
    d.mkdir()
    for name in ("pgpe_64000.pt", "pgpe_128000.pt", "model_5000.zip", "pgpe_192000.pt.tmp",
                 "latest.json", "pgpe_x.pt"):
        (d / name).write_text("")
    assert checkpoint_steps(str(tmp_path)) == [5000, 64000, 128000]
