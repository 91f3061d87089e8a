"""Test session settings: headless, loopback-only networking, a random ROS domain per session."""

import os
import random

# No display: PyBullet runs DIRECT, rendering goes through its TinyRenderer.
os.environ.pop("DISPLAY", None)
# Network safety: anything that opens DDS stays on loopback, in a domain of its own.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)   # deprecated in Jazzy (rcl warns); the range says it
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))
os.environ["CYCLONEDDS_URI"] = (
    "<CycloneDDS><Domain><General><Interfaces>"
    '<NetworkInterface address="127.0.0.1"/></Interfaces>'
    "<AllowMulticast>false</AllowMulticast></General></Domain></CycloneDDS>")
