"""The device simulator: 18 virtual DRS-0101 servos on a pty or TCP bus (kraby fake-bus)."""
