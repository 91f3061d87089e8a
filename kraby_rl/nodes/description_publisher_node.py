"""robot_state_publisher without ROS 2: robot_description and the link transforms.

Publishes the URDF on robot_description (transient local, as robot_state_publisher does),
the fixed joints once on tf_static, and for every joint_states message the transforms of
the moving joints on tf, so RViz shows the robot. With ROS 2 installed the launch files
start the real robot_state_publisher instead.
"""

from kraby_rl import ros
from kraby_rl.core.urdf import joint_transform, parse_joints
from kraby_rl.nodes import common as C
from kraby_rl.ros.messages import geometry_msgs, sensor_msgs, std_msgs, tf2_msgs
from kraby_rl.ros.runner import main_for

PARAMETERS = [
    ("robot_description", "", "the URDF text ('' = the package's urdf/kraby.urdf)"),
    ("frame_prefix", "", "prefix of every published frame id"),
]


class DescriptionPublisherNode(ros.Node):
    def __init__(self):
        super().__init__("robot_state_publisher")
        p = C.declare(self, PARAMETERS)
        text = p["robot_description"]
        if not text:
            from kraby_rl.core.urdf import find_urdf
            with open(find_urdf()) as fh:
                text = fh.read()
        self.joints = parse_joints(text)
        C.require(bool(self.joints), "robot_description", "a URDF with joints", text[:80])
        self.prefix = p["frame_prefix"]
        self.moving = {j.name: j for j in self.joints if j.type != "fixed"}
        self.create_publisher(std_msgs.String, "robot_description", C.LATCHED).publish(
            std_msgs.String(data=text))
        static = [self.transform(j, 0.0) for j in self.joints if j.type == "fixed"]
        self.create_publisher(tf2_msgs.TFMessage, "tf_static", C.LATCHED).publish(
            tf2_msgs.TFMessage(transforms=static))
        self.tf_pub = self.create_publisher(tf2_msgs.TFMessage, "tf", 10)
        self.create_subscription(sensor_msgs.JointState, "joint_states", self.on_joints, 10)
        self.get_logger().info(f"{len(self.moving)} moving and {len(static)} fixed joints")

    def transform(self, joint, position, stamp=None):
        t = geometry_msgs.TransformStamped()
        t.header.stamp = stamp or self.get_clock().now().to_msg()
        t.header.frame_id = self.prefix + joint.parent
        t.child_frame_id = self.prefix + joint.child
        xyz, q = joint_transform(joint, position)
        tr = t.transform
        tr.translation.x, tr.translation.y, tr.translation.z = (float(v) for v in xyz)
        tr.rotation.x, tr.rotation.y, tr.rotation.z, tr.rotation.w = (float(v) for v in q)
        return t

    def on_joints(self, msg):
        out = []
        for name, pos in zip(msg.name, msg.position):
            j = self.moving.get(name)
            if j is not None and pos == pos:        # skip unknown names and NaN
                out.append(self.transform(j, pos, msg.header.stamp))
        if out:
            self.tf_pub.publish(tf2_msgs.TFMessage(transforms=out))


main = main_for(DescriptionPublisherNode, "robot_state_publisher")

if __name__ == "__main__":
    main()
