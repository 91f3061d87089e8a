"""The `main()` of a kraby_rl node: init, build, spin, and a clean exit on every path.

Works the same on rclpy and on the embedded implementation. A configuration error (bad
parameter type or value, malformed --ros-args, invalid name) stops the node before it does
anything, with one FATAL line naming the problem, and exit status 2. Ctrl-C and SIGTERM end
the spin; the node's `destroy_node()` runs in every case (that is where nodes leave the
hardware safe), then the context is shut down.
"""

import signal
import sys

from . import (ExternalShutdownException, get_logger, init, InvalidNameError,
               InvalidParameterTypeException, InvalidParameterValueException, ok,
               ParameterNotDeclaredException, spin, try_shutdown)

CONFIG_ERRORS = (ValueError, TypeError, InvalidNameError, InvalidParameterTypeException,
                 InvalidParameterValueException, ParameterNotDeclaredException)
EXIT_CONFIG = 2


PROCESS_PRIORITY = "normal"
"""What ``run_node(priority=...)`` got for this process (for logs and diagnostics)."""

_STOP_REQUESTED = False
"""Set by the signal handler before it raises: the raise can land inside rclpy's C++
(pybind11 turns it into ``RuntimeError: Unable to convert call argument ...`` in
``take_message``) and must still count as the stop it is."""


def run_node(factory, args=None, name=None, priority=None):
    """Run the node that `factory()` builds until shutdown; returns the exit status.

    ``priority``: a real-time priority for the whole process (the safety path: shield,
    servo driver), taken before the middleware starts its threads so that they inherit it
    (SCHED_RR where permitted, else nice; ``KRABY_REALTIME=0`` leaves it normal)."""
    args = sys.argv if args is None else args
    logger = get_logger(name or getattr(factory, "__name__", "node"))
    if priority is not None:
        from kraby_rl.core.realtime import disabled_by_env, raise_priority
        if not disabled_by_env():
            global PROCESS_PRIORITY
            PROCESS_PRIORITY = raise_priority(priority)
    try:
        _init(args)
    except CONFIG_ERRORS as exc:
        logger.fatal(f"cannot start: {exc}")
        return EXIT_CONFIG
    node = None
    status = 0
    try:
        node = factory()
        spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except CONFIG_ERRORS as exc:
        (node.get_logger() if node is not None else logger).fatal(f"cannot start: {exc}")
        status = EXIT_CONFIG
    except RuntimeError:
        # rclpy's executor can fail inside take_message when a signal arrives there: the
        # KeyboardInterrupt our handler raises comes out of pybind11 as "Unable to convert
        # call argument ...", or the context is already shut down between wait and take.
        # That is a stop, not a failure; the same error while nobody asked to stop is one.
        if ok() and not _STOP_REQUESTED:
            raise
    finally:
        _ignore_interrupts()        # a second Ctrl-C (terminal + ros2 launch) must not cut
        try:                        # the clean-up that leaves the hardware safe
            if node is not None:
                node.destroy_node()
        finally:
            try_shutdown()
    return status


def _init(args):
    """init(); on rclpy without its signal handlers, which shut the context down at once, so
    that `destroy_node()` could no longer publish or log (rcl: "publisher's context is
    invalid"). Here SIGINT raises KeyboardInterrupt and SIGTERM ExternalShutdownException in
    the spinning thread, the node cleans up with a live context, then the context ends."""
    from . import IMPLEMENTATION
    if IMPLEMENTATION != "rclpy":
        init(args=args)         # the embedded context handles signals the same way itself
        return
    from rclpy.signals import SignalHandlerOptions
    init(args=args, signal_handler_options=SignalHandlerOptions.NO)

    def _stop(signum, frame):
        global _STOP_REQUESTED
        _STOP_REQUESTED = True
        # ignore any further signal from this moment on: the terminal's Ctrl-C and ros2
        # launch's SIGINT arrive a few ms apart, and the second must not interrupt clean-up
        _ignore_interrupts()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise ExternalShutdownException()
    try:
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
    except ValueError:          # not the main thread
        pass


def _ignore_interrupts():
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except ValueError:              # not the main thread (a node run inside a test)
        pass


def main_for(factory, name=None, priority=None):
    """A console-script entry point for a node class or factory."""
    def main(args=None):
        sys.exit(run_node(factory, args=args, name=name, priority=priority))
    return main
