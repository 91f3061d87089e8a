"""kraby_rl: an ament_python ROS 2 package that is also a pip-installable Python package."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "kraby_rl"


def share(folder, pattern="*"):
    files = [f for f in glob(os.path.join(folder, "**", pattern), recursive=True)
             if os.path.isfile(f)]
    by_dir = {}
    for f in files:
        by_dir.setdefault(os.path.join("share", PACKAGE, os.path.dirname(f)), []).append(f)
    return list(by_dir.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *share("launch"), *share("config"), *share("urdf"), *share("policies"),
    ],
    python_requires=">=3.10",
    install_requires=["numpy", "pyyaml", "gymnasium>=1.0", "pybullet>=3.2.5", "pyserial>=3.5",
                      "cyclonedds==11.0.1", "rosbags>=0.10", "matplotlib>=3.8", "scipy>=1.10",
                      "foxglove-sdk>=0.30"],
    extras_require={
        # ray[rllib] pins gymnasium (1.2.2 with ray 2.60.0); evotorch brings ray too
        "train": ["torch==2.13.0", "stable-baselines3>=2.3", "evotorch==0.6.1",
                  "ray[default,rllib]==2.60.0", "tensorboard", "tqdm", "rich", "imageio",
                  "imageio-ffmpeg"],
        "test": ["pytest", "hypothesis", "flake8", "websockets>=13"],
    },
    zip_safe=False,
    maintainer="kraby_rl developers",
    maintainer_email="kraby-rl@example.org",
    description="Control and reinforcement-learning stack for the Kraby hexapod",
    license="MIT",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "kraby = kraby_rl.cli:main",
            "servo_driver = kraby_rl.nodes.servo_driver_node:main",
            "sim_node = kraby_rl.nodes.sim_node:main",
            "state_estimator = kraby_rl.nodes.state_estimator_node:main",
            "safety_shield = kraby_rl.nodes.safety_shield_node:main",
            "policy_node = kraby_rl.nodes.policy_node:main",
            "gym_bridge = kraby_rl.training.bridge:main",
            "description_publisher = kraby_rl.nodes.description_publisher_node:main",
            "navigator = kraby_rl.nodes.navigator_node:main",
        ],
    },
)
