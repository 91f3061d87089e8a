"""The embedded ROS 2 implementation: the rclpy subset kraby_rl's nodes use, on CycloneDDS.

It speaks ROS 2's wire format (topics `rt/<name>`, types `<pkg>::msg::dds_::<Type>_`, XCDR1
little-endian, ROS_DOMAIN_ID as the DDS domain, the RIHS01 type hash in USER_DATA,
`ros_discovery_info`), so a ROS 2 machine on the same network sees its nodes and topics.
"""
