"""A small node program the ROS tests run in a separate process (reports as JSON lines).

    python test/ros_peer.py pub|sub|params [options] [--ros-args ...]
"""

import argparse
import json
import sys
import time

from kraby_rl import ros
from kraby_rl.ros.messages import std_msgs
from kraby_rl.ros.runner import run_node


def say(**event):
    print(json.dumps(event), flush=True)


def qos(opts):
    return ros.QoSProfile(
        depth=opts.depth,
        reliability=ros.ReliabilityPolicy[opts.reliability.upper()],
        durability=ros.DurabilityPolicy[opts.durability.upper()])


class Peer(ros.Node):
    def __init__(self, opts):
        super().__init__("peer")
        self.opts = opts
        self.sent = 0
        if opts.mode == "pub":
            self.pub = self.create_publisher(std_msgs.String, opts.topic, qos(opts))
            self.go = not opts.start_on
            latched = ros.DurabilityPolicy.TRANSIENT_LOCAL
            if opts.start_on:       # the other side says when its reader knows this writer
                self.create_subscription(std_msgs.String, opts.start_on, self.on_go,
                                         ros.QoSProfile(depth=1, durability=latched))
            self.timer = self.create_timer(opts.period, self.tick)
        elif opts.mode == "sub":
            self.sub = self.create_subscription(std_msgs.String, opts.topic,
                                                lambda m: say(event="msg", data=m.data),
                                                qos(opts))
            self.matched = False
            self.create_timer(0.05, self.report_match)
        elif opts.mode == "params":
            values = {
                "rate_hz": self.declare_parameter("rate_hz", 50.0).value,
                "label": self.declare_parameter("label", "default").value,
                "gains": self.declare_parameter("gains", [1.0, 2.0, 3.0]).value,
                "enabled": self.declare_parameter("enabled", False).value,
                "limits.max_tilt_rad": self.declare_parameter("limits.max_tilt_rad", 0.5).value,
                "use_sim_time": self.get_parameter("use_sim_time").value,
            }
            pub = self.create_publisher(std_msgs.String, opts.topic, ros.QoSProfile(
                depth=1, durability=ros.DurabilityPolicy.TRANSIENT_LOCAL))
            pub.publish(std_msgs.String(data=json.dumps(
                {"node": self.get_fully_qualified_name(), "values": values})))
        say(event="ready", node=self.get_fully_qualified_name())

    def report_match(self):
        if not self.matched and self.sub.get_publisher_count() > 0:
            self.matched = True
            say(event="matched")

    def on_go(self, msg):
        self.go = True

    def tick(self):
        if self.sent == 0 and (not self.go or self.count_subscribers(self.opts.topic)
                               < self.opts.wait_subscribers):
            return
        if self.sent < self.opts.count:
            self.pub.publish(std_msgs.String(data=str(self.sent)))
            self.sent += 1
            if self.sent == self.opts.count:
                say(event="done", sent=self.sent, at=time.time())


def main():
    argv = ros.remove_ros_args(sys.argv)
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["pub", "sub", "params"])
    parser.add_argument("--topic", default="chatter")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--period", type=float, default=0.01)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--reliability", default="reliable")
    parser.add_argument("--durability", default="volatile")
    parser.add_argument("--wait-subscribers", type=int, default=0)
    parser.add_argument("--start-on", default="", help="pub: wait for a message on this "
                        "(transient local) topic before the first message")
    opts = parser.parse_args(argv[1:])
    sys.exit(run_node(lambda: Peer(opts), name="peer"))


if __name__ == "__main__":
    main()
