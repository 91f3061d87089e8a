"""Terrain in the PyBullet world: what is built is where ``height()`` says, drawn from the
config, felt by the feet, and a step the tripod gait cannot climb stops it."""

import gymnasium as gym
import numpy as np
import pybullet as pb
import pytest

import kraby_rl  # noqa: F401  (registers the envs)
from kraby_rl.core import joints as J
from kraby_rl.sim.terrain import TerrainSpec, check_terrain, draw_terrain
from kraby_rl.sim.world import KrabyWorld
from kraby_rl.training.config import ConfigError, from_dict

SPECS = [TerrainSpec("rough", 0.03, 1), TerrainSpec("blocks", 0.04, 2),
         TerrainSpec("steps", 0.04), TerrainSpec("steps", -0.05), TerrainSpec("stairs", 0.03),
         TerrainSpec("stairs", -0.03), TerrainSpec("slope", 15.0), TerrainSpec("slope", -15.0)]


@pytest.fixture(scope="module")
def world():
    w = KrabyWorld()
    yield w
    w.close()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label())
def test_height_is_where_the_built_surface_is(world, spec):
    world.reset(terrain=spec)
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1.5, 3.0, (300, 2))
    starts = [[x, y, 2.0] for x, y in pts]
    ends = [[x, y, -1.0] for x, y in pts]
    hits = pb.rayTestBatch(starts, ends, physicsClientId=world.cid)
    err = []
    for (x, y), hit in zip(pts, hits):
        if hit[0] == world.robot:
            continue
        err.append(abs(hit[3][2] - world.ground_height(x, y)))
    err = np.array(err)
    # edges of cells, blocks and steps are where nearest-cell lookups differ
    assert np.mean(err < 0.003) > 0.9, (spec, np.sort(err)[-10:])
    assert world.ground_height(0.0, 0.0) == pytest.approx(spec.start_height())


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label())
def test_robot_stands_on_each_terrain_with_feet_in_contact(world, spec):
    world.reset(terrain=spec)
    for _ in range(25):
        world.command(J.DEFAULT_POSE)
        world.step()
    s = world.state()
    assert s.foot_contact.all() and not s.body_contact
    assert s.base_pos[2] - s.ground_z == pytest.approx(J.STANDING_HEIGHT, abs=0.01)


def test_terrain_is_rebuilt_per_reset_and_flat_leaves_the_bare_plane(world):
    world.reset(terrain=TerrainSpec("blocks", 0.03, 5))
    n = pb.getNumBodies(physicsClientId=world.cid)
    world.reset(terrain=TerrainSpec("steps", 0.02))
    assert pb.getNumBodies(physicsClientId=world.cid) == 3      # plane, robot, the step
    world.reset()
    assert pb.getNumBodies(physicsClientId=world.cid) == 2 and n > 3
    assert world.ground_height(1.0, 0.0) == 0.0


def test_config_section_is_checked_and_drawn():
    sec = check_terrain({"kinds": {"rough": 1, "steps": 3}, "step_m": [0.02, 0.05]})
    rng = np.random.default_rng(0)
    drawn = [draw_terrain(sec, rng) for _ in range(200)]
    kinds = [d.kind for d in drawn]
    assert set(kinds) == {"rough", "steps"} and 0.65 < kinds.count("steps") / 200 < 0.85
    assert all(0.02 <= d.size <= 0.05 for d in drawn if d.kind == "steps")
    assert all(0.0 <= d.size <= 0.03 for d in drawn if d.kind == "rough")
    assert check_terrain(None)["kinds"] == {"flat": 1.0}
    for bad, said in [({"kinds": {"lava": 1}}, "unknown kind 'lava'"),
                      ({"kinds": {"flat": 0}}, "sum to 0"),
                      ({"step_m": [0.05, 0.02]}, "terrain.step_m: expected [low, high]"),
                      ({"slope_deg": [0, 40]}, "high <= 25.0, found [0, 40]"),
                      ({"height": 1}, "unknown key 'height'")]:
        with pytest.raises(ValueError, match=None) as exc:
            check_terrain(bad)
        assert said in str(exc.value)
    with pytest.raises(ValueError, match="steps expects -0.08..0.08 m, found 0.2"):
        TerrainSpec("steps", 0.2)
    with pytest.raises(ConfigError, match="config key 'env': terrain.kinds: unknown kind"):
        from_dict({"env": {"terrain": {"kinds": {"ice": 1}}}})


def test_env_draws_terrain_per_episode_and_heights_are_above_the_ground():
    env = gym.make("kraby_rl/Hexapod-v0", terrain={"kinds": {"steps": 1, "slope": 1}},
                   episode_s=1.0).unwrapped
    try:
        labels = set()
        for seed in range(6):
            _, info = env.reset(seed=seed)
            labels.add(info["terrain"])
            assert info["ground_z"] == pytest.approx(env.terrain_spec.start_height())
        assert len(labels) == 6
        # a way down starts on a platform: not a fall, height reward as on flat ground
        _, info = env.reset(seed=0, options={"terrain": {"kind": "steps", "size": -0.05}})
        for _ in range(10):
            _, _, term, _, info = env.step(np.zeros(18))
            assert not term
        height = info["base_pos"][2] - info["ground_z"]
        assert height == pytest.approx(J.STANDING_HEIGHT, abs=0.015)
    finally:
        env.close()


@pytest.mark.parametrize("lift", [0.02, 0.045])
def test_a_step_higher_than_the_foot_lift_stops_the_tripod_gait(lift):
    """The default gait lifts its feet 2 cm: a 1 cm step is walked over, a 4 cm one stops
    it (the situation the learning issue is about); lifting them 4.5 cm, it climbs 4 cm."""
    env = gym.make("kraby_rl/Hexapod-v0", action_mode="gait_residual", command=[0.15, 0, 0],
                   zero_command_prob=0.0, episode_s=10.0, gait_lift_m=lift).unwrapped
    try:
        def forward(size):
            env.reset(seed=0, options={"terrain": {"kind": "steps", "size": size}})
            for _ in range(env.max_steps):
                _, _, term, trunc, info = env.step(np.zeros(18))
                if term or trunc:
                    break
            return info["base_pos"][0]
        assert forward(0.01) > 1.0
        if lift < 0.04:
            assert forward(0.04) < 0.45    # the step is 0.30 m ahead of the start
        else:
            assert forward(0.04) > 1.0
    finally:
        env.close()


def test_rough_episodes_do_not_leak_and_collide_with_the_new_heights():
    """A heightfield per episode grew a training worker by 24 MB an episode until the OOM
    killer stopped a 1.25M-step run; the world now replaces one heightfield's heights."""
    def rss_mb():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096 / 1e6
    w = KrabyWorld()
    try:
        w.reset(terrain=TerrainSpec(kind="rough", size=0.03, seed=0))
        before = rss_mb()
        for seed in range(1, 21):
            w.reset(terrain=TerrainSpec(kind="rough", size=0.03, seed=seed))
        assert rss_mb() - before < 40, (before, rss_mb())
        for x, y in [(0.5, 0.5), (-0.6, 0.3), (0.7, -0.8)]:
            hit = pb.rayTest([x, y, 1.0], [x, y, -1.0], physicsClientId=w.cid)[0]
            assert abs(hit[3][2] - w.ground_height(x, y)) < 1e-3
    finally:
        w.close()
