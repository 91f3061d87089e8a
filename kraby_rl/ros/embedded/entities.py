"""Publishers, subscriptions and timers of the embedded implementation (rclpy's names)."""

import itertools

from cyclonedds._clayer import ddspy_take, ddspy_write
from cyclonedds.core import DDSException, InstanceState, ReadCondition, SampleState, ViewState
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader

from .messages import message_type_name, type_hash
from .names import dds_topic_name
from .qos import to_dds


def take_serialized(reader, condition):
    """One sample's serialized data as received (bytes), None when there is none, False for
    a sample without data (a writer-gone notice). cyclonedds' DataReader.take deserializes
    what its C layer returns; this is that same call, keeping the bytes."""
    found = ddspy_take(reader._ref, condition.mask, 1)
    if isinstance(found, int):
        raise DDSException(found, f"taking serialized data from {reader!r}")
    if not found:
        return None
    data, info = found[0]
    return bytes(data) if info.valid_data else False


def _user_data(msg_type):
    # rmw_cyclonedds (Jazzy) reads the type hash from USER_DATA, as 'typehash=RIHS01_<hex>;'.
    return f"typehash={type_hash(message_type_name(msg_type))};".encode()


class Publisher:
    def __init__(self, node, msg_type, topic_name, qos_profile):
        self._node = node
        self.msg_type = msg_type
        self.topic_name = topic_name
        self.qos_profile = qos_profile
        topic = node.context.topic(dds_topic_name(topic_name), msg_type)
        self._writer = DataWriter(node.context.publisher, topic,
                                  to_dds(qos_profile, _user_data(msg_type)))

    @property
    def topic(self):
        return self.topic_name

    def publish(self, msg):
        """Publish one message.

        Raises:
            TypeError: naming the topic, the type it carries and the type given.
        """
        if not isinstance(msg, self.msg_type):
            raise TypeError(f"publish on {self.topic_name}: expected a "
                            f"{message_type_name(self.msg_type)}, found {type(msg).__name__}")
        self._writer.write(msg)

    def publish_serialized(self, data):
        """Publish an already serialized message (CDR with its encapsulation header, as
        recorded in a bag) without decoding it: the bytes go on the wire as they are."""
        data = bytes(data)
        if len(data) < 4 or data[0] != 0 or data[1] not in (0, 1):
            raise ValueError(f"publish on {self.topic_name}: expected CDR data with its "
                             f"4-byte encapsulation header, found {data[:4]!r}")
        ret = ddspy_write(self._writer._ref, data.ljust((len(data) + 3) & ~3, b"\0"))
        if ret < 0:
            raise DDSException(ret, f"publishing serialized data on {self.topic_name}")

    def get_subscription_count(self):
        return len(self._writer.get_matched_subscriptions())

    def wait_for_acks(self, timeout_sec):
        """Block until every reliable subscriber acknowledged what was published."""
        return self._writer.wait_for_acks(int(timeout_sec * 1e9))

    def guid(self):
        return self._writer.get_guid().bytes

    def destroy(self):
        return self._node.destroy_publisher(self)

    def _close(self):
        self._writer = None


class Subscription:
    def __init__(self, node, msg_type, topic_name, callback, qos_profile, raw=False):
        self._node = node
        self.msg_type = msg_type
        self.topic_name = topic_name
        self.callback = callback
        self.qos_profile = qos_profile
        self.raw = raw
        topic = node.context.topic(dds_topic_name(topic_name), msg_type)
        self._reader = DataReader(node.context.subscriber, topic,
                                  to_dds(qos_profile, _user_data(msg_type)))
        self.condition = ReadCondition(
            self._reader, SampleState.NotRead | ViewState.Any | InstanceState.Any)

    @property
    def topic(self):
        return self.topic_name

    def take(self):
        """The next message with valid data, or None (writer-gone notices are dropped).
        With ``raw`` (as rclpy's ``raw=True``): the serialized message, exactly the CDR
        bytes that arrived (encapsulation header first), not a re-serialisation."""
        while True:
            if self.raw:
                found = take_serialized(self._reader, self.condition)
                if found is None:
                    return None
                if found is not False:
                    return found
                continue
            samples = self._reader.take(N=1, condition=self.condition)
            if not samples:
                return None
            sample = samples[0]
            if sample.sample_info.valid_data:
                return sample

    def get_publisher_count(self):
        return len(self._reader.get_matched_publications())

    def guid(self):
        return self._reader.get_guid().bytes

    def destroy(self):
        return self._node.destroy_subscription(self)

    def _close(self):
        self._reader = None
        self.condition = None


_ORDER = itertools.count()


class Timer:
    """A periodic timer on a clock; calls are scheduled on a fixed grid, so they do not drift."""

    def __init__(self, callback, period_sec, clock, autostart=True):
        if not period_sec > 0:
            raise ValueError(f"timer period: expected a positive number of seconds, "
                             f"found {period_sec!r}")
        self.callback = callback
        self.timer_period_ns = int(round(period_sec * 1e9))
        self.clock = clock
        self._canceled = not autostart
        self._order = next(_ORDER)
        self._next = clock.now_ns() + self.timer_period_ns

    def cancel(self):
        self._canceled = True

    def is_canceled(self):
        return self._canceled

    def reset(self):
        self._canceled = False
        self._next = self.clock.now_ns() + self.timer_period_ns

    def time_until_next_call(self):
        """ns until the next call (<= 0: due), None when canceled."""
        if self._canceled:
            return None
        now = self.clock.now_ns()
        if self._next - now > self.timer_period_ns:  # the clock went back (a sim reset)
            self._next = now + self.timer_period_ns
        return self._next - now

    def is_ready(self):
        remaining = self.time_until_next_call()
        return remaining is not None and remaining <= 0

    def _fired(self):
        """Advance to the next grid point after now (skipping missed ones, as rcl does)."""
        now = self.clock.now_ns()
        self._next += self.timer_period_ns
        if self._next <= now:
            missed = (now - self._next) // self.timer_period_ns + 1
            self._next += missed * self.timer_period_ns

    def destroy(self):
        self.cancel()
