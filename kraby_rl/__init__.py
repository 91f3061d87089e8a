"""kraby_rl: ROS 2 control and reinforcement-learning stack for the Kraby hexapod."""

__version__ = "0.1.0"
