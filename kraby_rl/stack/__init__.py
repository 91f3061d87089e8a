"""The stacks: described once (ROS 2 launch files and kraby launch), run, evaluated."""
