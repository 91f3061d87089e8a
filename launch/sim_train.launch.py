"""`ros2 launch kraby_rl sim_train.launch.py [name:=value ...]`: the sim_train stack.

The nodes, parameters and remappings come from kraby_rl.stack.description, the same description
`kraby launch sim_train` runs without ROS 2. List the arguments with
`ros2 launch kraby_rl sim_train.launch.py -s`:
port, policy, navigator, config, use_sim_time, rviz, namespace, train_config, run_dir,
record, foxglove.
"""

from kraby_rl.stack.description import launch_description


def generate_launch_description():
    return launch_description("sim_train")
