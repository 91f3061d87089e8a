"""The PyBullet world of Kraby.

PyBullet's C extension prints its build banner ("pybullet build time: ...") on the process's
stderr when it is first imported; every kraby command that simulates would start with it,
and a JSON-printing command would no longer print only JSON. The import here sends that one
line to /dev/null; everything printed later goes where it always went.
"""

import os
import sys


def _flush_c_stdio():
    try:
        import ctypes
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def _import_pybullet_quietly():
    if "pybullet" in sys.modules:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError):       # no real stdio (embedded interpreter): just import
        import pybullet  # noqa: F401
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            import pybullet  # noqa: F401,F811
            _flush_c_stdio()        # a pipe's C buffer would print it later, after restore
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


_import_pybullet_quietly()
