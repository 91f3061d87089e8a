"""Simulated episodes written as rosbag2 bags (MCAP): ``kraby eval --record DIR`` and the
gate's ``--record DIR`` (one bag per episode, ``DIR/episode_<k>``).

Each control step becomes the messages the sim stack publishes for it, stamped in simulated
time and built and CDR-encoded with the `rosbags` Jazzy typestore: ``/joint_states`` (q, w,
the applied torques as effort), ``/imu/data`` (orientation, gyro), ``/sim/odom`` (ground
truth), ``/cmd_vel`` (the episode's command) and ``/clock``. So an evaluation episode can be
opened in Foxglove, replayed with ``kraby bag play`` and judged by ``kraby eval --from-bag``
like a recording of the robot.
"""

from __future__ import annotations

import os

import numpy as np

from kraby_rl.core import joints as J

TOPICS = {"/joint_states": "sensor_msgs/msg/JointState", "/imu/data": "sensor_msgs/msg/Imu",
          "/sim/odom": "nav_msgs/msg/Odometry", "/cmd_vel": "geometry_msgs/msg/Twist",
          "/clock": "rosgraph_msgs/msg/Clock"}


class EpisodeBag:
    """One bag for one episode; ``add(t, state, command)`` per control step, then ``close``.

    Raises:
        FileExistsError: the bag directory exists already.
    """

    def __init__(self, path: str):
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import get_typestore, Stores
        if os.path.exists(path):
            raise FileExistsError(f"bag {path!r}: exists already; give a new directory")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.store = get_typestore(Stores.ROS2_JAZZY)
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.conns = {t: self.writer.add_connection(t, m, typestore=self.store)
                      for t, m in TOPICS.items()}
        self.count = 0
        T = self.store.types
        self._T = T
        self._time = T["builtin_interfaces/msg/Time"]
        self._vec = T["geometry_msgs/msg/Vector3"]
        self._quat = T["geometry_msgs/msg/Quaternion"]

    def _stamp(self, t: float):
        ns = int(round(t * 1e9))
        return self._time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def _header(self, t, frame):
        return self._T["std_msgs/msg/Header"](stamp=self._stamp(t), frame_id=frame)

    def _write(self, topic, t, msg):
        data = self.store.serialize_cdr(msg, TOPICS[topic])
        self.writer.write(self.conns[topic], int(round(t * 1e9)), data)
        self.count += 1

    def add(self, t: float, state, command) -> None:
        """The messages of one control step at simulated time ``t`` [s]."""
        T = self._T
        q, w, tau = (np.asarray(x, float) for x in (state.q, state.w, state.tau))
        self._write("/clock", t, T["rosgraph_msgs/msg/Clock"](clock=self._stamp(t)))
        self._write("/joint_states", t, T["sensor_msgs/msg/JointState"](
            header=self._header(t, ""), name=list(J.JOINT_NAMES), position=q, velocity=w,
            effort=tau))
        quat = self._quat(*(float(v) for v in state.base_quat))
        zero9 = np.zeros(9)
        self._write("/imu/data", t, T["sensor_msgs/msg/Imu"](
            header=self._header(t, "base_link"), orientation=quat,
            orientation_covariance=zero9, angular_velocity=self._vec(
                *(float(v) for v in state.ang_vel_body)),
            angular_velocity_covariance=zero9, linear_acceleration=self._vec(0.0, 0.0, 0.0),
            linear_acceleration_covariance=zero9))
        pose = T["geometry_msgs/msg/Pose"](
            position=T["geometry_msgs/msg/Point"](*(float(v) for v in state.base_pos)),
            orientation=quat)
        twist = T["geometry_msgs/msg/Twist"](
            linear=self._vec(*(float(v) for v in state.lin_vel_body)),
            angular=self._vec(*(float(v) for v in state.ang_vel_body)))
        with_cov = T["geometry_msgs/msg/PoseWithCovariance"], \
            T["geometry_msgs/msg/TwistWithCovariance"]
        self._write("/sim/odom", t, T["nav_msgs/msg/Odometry"](
            header=self._header(t, "odom"), child_frame_id="base_link",
            pose=with_cov[0](pose=pose, covariance=np.zeros(36)),
            twist=with_cov[1](twist=twist, covariance=np.zeros(36))))
        self._write("/cmd_vel", t, T["geometry_msgs/msg/Twist"](
            linear=self._vec(float(command[0]), float(command[1]), 0.0),
            angular=self._vec(0.0, 0.0, float(command[2]))))

    def close(self) -> str:
        self.writer.close()
        return self.path


def episode_path(directory: str, k: int) -> str:
    return os.path.join(directory, f"episode_{k}")
