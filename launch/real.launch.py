"""`ros2 launch kraby_rl real.launch.py [name:=value ...]`: the real stack.

The nodes, parameters and remappings come from kraby_rl.stack.description, the same description
`kraby launch real` runs without ROS 2. List the arguments with
`ros2 launch kraby_rl real.launch.py -s`:
port, policy, navigator, config, use_sim_time, rviz, namespace, train_config, run_dir,
record, foxglove.
"""

from kraby_rl.stack.description import launch_description


def generate_launch_description():
    return launch_description("real")
