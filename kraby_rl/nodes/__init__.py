"""Thin ROS nodes: parameters -> core -> publish. One node per file, `<name>_node.py`."""
