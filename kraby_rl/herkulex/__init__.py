"""Herkulex DRS-0101 servo bus: codec (``protocol``), unit conversions (``units``), driver
(``driver``, the only module that imports pyserial), calibration files (``calibration``),
``kraby servo`` tools (``tools``), and the device simulator that stands in for the robot
(``virtual/``: servos, joints, bus, transports, ``kraby fake-bus``)."""
