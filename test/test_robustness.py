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
