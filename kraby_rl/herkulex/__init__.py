"""Herkulex DRS-0101 servo bus: codec (``protocol``), unit conversions (``units``), driver
(``driver``, the only module that imports pyserial) and the virtual bus that stands in for
the robot (``virtual_servo``, ``virtual_joints``, ``virtual_bus``, ``transports``,
``fake_bus``)."""
