"""Loggers as rclpy has them: severities, throttle, once, skip_first, child loggers.

Lines look like rcutils' default console output, on stderr:
`[INFO] [1732190000.123456789] [kraby.servo_driver]: message`.
"""

import enum
import sys
import threading
import time


class LoggingSeverity(enum.IntEnum):
    UNSET = 0
    DEBUG = 10
    INFO = 20
    WARN = 30
    ERROR = 40
    FATAL = 50


_LEVELS = {}       # logger name -> LoggingSeverity
_DEFAULT = [LoggingSeverity.INFO]
_LOCK = threading.Lock()


def set_default_level(level):
    _DEFAULT[0] = LoggingSeverity(level)


class RcutilsLogger:
    def __init__(self, name=""):
        self.name = name
        self._sites = {}

    def get_child(self, name):
        return RcutilsLogger(f"{self.name}.{name}" if self.name else name)

    def set_level(self, level):
        _LEVELS[self.name] = LoggingSeverity(level)
        return True

    def get_effective_level(self):
        parts = self.name.split(".")
        for i in range(len(parts), 0, -1):
            level = _LEVELS.get(".".join(parts[:i]))
            if level:
                return level
        return _DEFAULT[0]

    def is_enabled_for(self, severity):
        return LoggingSeverity(severity) >= self.get_effective_level()

    def log(self, message, severity, **kwargs):
        return self._log(LoggingSeverity(severity), message, kwargs, depth=2)

    def debug(self, message, **kwargs):
        return self._log(LoggingSeverity.DEBUG, message, kwargs)

    def info(self, message, **kwargs):
        return self._log(LoggingSeverity.INFO, message, kwargs)

    def warning(self, message, **kwargs):
        return self._log(LoggingSeverity.WARN, message, kwargs)

    warn = warning

    def error(self, message, **kwargs):
        return self._log(LoggingSeverity.ERROR, message, kwargs)

    def fatal(self, message, **kwargs):
        return self._log(LoggingSeverity.FATAL, message, kwargs)

    def _log(self, severity, message, kwargs, depth=2):
        unknown = set(kwargs) - {"throttle_duration_sec", "throttle_time_source_type",
                                 "skip_first", "once"}
        if unknown:
            raise TypeError(f"logger: unsupported options {sorted(unknown)}")
        if not self.is_enabled_for(severity):
            return False
        if kwargs:
            frame = sys._getframe(depth)
            site = (frame.f_code.co_filename, frame.f_lineno)
            state = self._sites.setdefault(site, {"count": 0, "last": None})
            state["count"] += 1
            if kwargs.get("once") and state["count"] > 1:
                return False
            if kwargs.get("skip_first") and state["count"] == 1:
                return False
            period = kwargs.get("throttle_duration_sec")
            now = time.monotonic()
            if period and state["last"] is not None and now - state["last"] < period:
                return False
            state["last"] = now
        stamp = time.time_ns()
        line = (f"[{severity.name}] [{stamp // 1_000_000_000}.{stamp % 1_000_000_000:09d}] "
                f"[{self.name}]: {message}\n")
        with _LOCK:
            sys.stderr.write(line)
            sys.stderr.flush()
        return True


def get_logger(name):
    return RcutilsLogger(name)
