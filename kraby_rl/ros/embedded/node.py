"""rclpy.node.Node for the embedded implementation: names, endpoints, parameters, clock, logger."""

from . import context as ctx
from .arguments import parse_arguments
from .clock import ClockType, Clock, Time
from .entities import Publisher, Subscription, Timer
from .logging import get_logger
from .messages import get_message
from .names import (expand_topic_name, normalize_namespace, remap_node, remap_topic,
                    validate_node_name)
from .parameters import (check_range, coerce, InvalidParameterValueException, Parameter,
                         ParameterAlreadyDeclaredException, ParameterDescriptor,
                         ParameterNotDeclaredException, SetParametersResult)
from .qos import as_profile, QoSProfile, ReliabilityPolicy


class Node:
    """The subset of rclpy.node.Node that kraby_rl's nodes use, with rclpy's signatures."""

    def __init__(self, node_name, *, context=None, cli_args=None, namespace=None,
                 use_global_arguments=True, enable_rosout=True, start_parameter_services=True,
                 parameter_overrides=None, allow_undeclared_parameters=False,
                 automatically_declare_parameters_from_overrides=False):
        self.context = context or ctx.get_default_context()
        if not self.context.ok():
            raise RuntimeError("rclpy.init() has not been called (or the context was shut "
                               "down) before creating a Node")
        local = parse_arguments(["--ros-args", *cli_args] if cli_args and
                                "--ros-args" not in cli_args else cli_args or [])
        global_args = self.context.args if use_global_arguments else parse_arguments([])
        self._remaps = local.remaps + global_args.remaps
        self._original_name = validate_node_name(node_name)
        name, ns = remap_node(self._remaps, node_name, normalize_namespace(namespace))
        self._name = validate_node_name(name)
        self._namespace = normalize_namespace(ns)
        fqn = self.get_fully_qualified_name()
        self._overrides = global_args.parameters_for(fqn)
        self._overrides.update(local.parameters_for(fqn))
        for p in parameter_overrides or []:
            self._overrides[p.name] = _Override(p.name, p.value, "parameter_overrides")
        self._allow_undeclared = allow_undeclared_parameters
        self._parameters = {}
        self._descriptors = {}
        self._on_set = []
        self.publishers, self.subscriptions, self.timers = [], [], []
        self._logger = get_logger(
            (self._namespace.strip("/").replace("/", ".") + "." + self._name).lstrip("."))
        self._clock = Clock(clock_type=ClockType.ROS_TIME)
        self._clock_sub = None
        self.declare_parameter("use_sim_time", False)
        if automatically_declare_parameters_from_overrides:
            for pname, override in self._overrides.items():
                if pname not in self._parameters:
                    self.declare_parameter(pname, override.value)
        self._apply_sim_time(self.get_parameter("use_sim_time").value)
        self.context.add_node(self)

    # --- names -----------------------------------------------------------------------------
    def get_name(self):
        return self._name

    def get_namespace(self):
        return self._namespace

    def get_fully_qualified_name(self):
        return self._namespace.rstrip("/") + "/" + self._name

    def resolve_topic_name(self, topic, *, only_expand=False):
        """Expand `topic` for this node and apply the remap rules (rcl's order)."""
        fqn = expand_topic_name(topic, self._name, self._namespace)
        if only_expand:
            return fqn
        return remap_topic(self._remaps, fqn, self._name, self._namespace, self._original_name)

    def get_logger(self):
        return self._logger

    def get_clock(self):
        return self._clock

    # --- endpoints -------------------------------------------------------------------------
    def create_publisher(self, msg_type, topic, qos_profile, *, callback_group=None,
                         event_callbacks=None, qos_overriding_options=None,
                         publisher_class=None):
        pub = Publisher(self, msg_type, self.resolve_topic_name(topic), as_profile(qos_profile))
        self.publishers.append(pub)
        self.context.graph_changed()
        return pub

    def create_subscription(self, msg_type, topic, callback, qos_profile, *,
                            callback_group=None, event_callbacks=None,
                            qos_overriding_options=None, raw=False):
        sub = Subscription(self, msg_type, self.resolve_topic_name(topic), callback,
                           as_profile(qos_profile), raw=raw)
        self.subscriptions.append(sub)
        self.context.graph_changed()
        return sub

    def create_timer(self, timer_period_sec, callback, callback_group=None, clock=None,
                     autostart=True):
        timer = Timer(callback, timer_period_sec, clock or self._clock, autostart=autostart)
        self.timers.append(timer)
        self.context.graph_changed()
        return timer

    def _destroy(self, entities, entity, close):
        if entity not in entities:
            return False
        entities.remove(entity)
        close()
        self.context.graph_changed()
        return True

    def destroy_publisher(self, publisher):
        return self._destroy(self.publishers, publisher, publisher._close)

    def destroy_subscription(self, subscription):
        return self._destroy(self.subscriptions, subscription, subscription._close)

    def destroy_timer(self, timer):
        return self._destroy(self.timers, timer, timer.cancel)

    def destroy_node(self):
        for pub in list(self.publishers):
            self.destroy_publisher(pub)
        for sub in list(self.subscriptions):
            self.destroy_subscription(sub)
        for timer in list(self.timers):
            self.destroy_timer(timer)
        self.context.remove_node(self)
        return True

    def count_publishers(self, topic_name):
        fqn = self.resolve_topic_name(topic_name)
        return max([s.get_publisher_count() for s in self.subscriptions
                    if s.topic_name == fqn] or [0])

    def count_subscribers(self, topic_name):
        fqn = self.resolve_topic_name(topic_name)
        return max([p.get_subscription_count() for p in self.publishers
                    if p.topic_name == fqn] or [0])

    def _endpoint_guids(self):
        return ([s.guid() for s in self.subscriptions if s._reader is not None],
                [p.guid() for p in self.publishers if p._writer is not None])

    # --- parameters ------------------------------------------------------------------------
    def declare_parameter(self, name, value=None, descriptor=None, ignore_override=False):
        """Declare a parameter; an override from the command line or a params file wins.

        Raises:
            ParameterAlreadyDeclaredException: when declared twice.
            InvalidParameterTypeException: naming the parameter, its declared type and the
                value, when an override has another type.
            InvalidParameterValueException: when the value is outside the descriptor's range.
        """
        if name in self._parameters:
            raise ParameterAlreadyDeclaredException(name)
        descriptor = descriptor or ParameterDescriptor()
        if isinstance(value, Parameter.Type):
            declared, value = value, None
        elif descriptor.type:
            declared = Parameter.Type(descriptor.type)
        else:
            declared = Parameter.Type.from_parameter_value(value)
        dynamic = descriptor.dynamic_typing
        if value is not None:
            value = coerce(name, declared, value, "the declared default", dynamic)
        override = None if ignore_override else self._overrides.get(name)
        if override is not None:
            value = coerce(name, declared, override.value, override.source, dynamic)
        if value is not None:
            check_range(name, value, descriptor)
        descriptor.name = name
        descriptor.type = int(declared)
        self._descriptors[name] = descriptor
        self._parameters[name] = Parameter(name, None if dynamic else declared, value)
        return self._parameters[name]

    def declare_parameters(self, namespace, parameters, ignore_override=False):
        declared = []
        for entry in parameters:
            entry = tuple(entry)
            pname = f"{namespace}.{entry[0]}" if namespace else entry[0]
            value = entry[1] if len(entry) > 1 else None
            descriptor = entry[2] if len(entry) > 2 else None
            declared.append(self.declare_parameter(pname, value, descriptor, ignore_override))
        return declared

    def undeclare_parameter(self, name):
        if name not in self._parameters:
            raise ParameterNotDeclaredException(name)
        del self._parameters[name]
        del self._descriptors[name]

    def has_parameter(self, name):
        return name in self._parameters

    def get_parameter(self, name):
        if name in self._parameters:
            return self._parameters[name]
        if self._allow_undeclared:
            return Parameter(name, Parameter.Type.NOT_SET, None)
        raise ParameterNotDeclaredException(name)

    def get_parameters(self, names):
        return [self.get_parameter(n) for n in names]

    def get_parameter_or(self, name, alternative_value=None):
        if name in self._parameters:
            return self._parameters[name]
        return alternative_value if alternative_value is not None else \
            Parameter(name, Parameter.Type.NOT_SET, None)

    def get_parameters_by_prefix(self, prefix):
        prefix = prefix + "." if prefix else ""
        return {n[len(prefix):]: p for n, p in self._parameters.items() if n.startswith(prefix)}

    def describe_parameter(self, name):
        if name not in self._descriptors:
            raise ParameterNotDeclaredException(name)
        return self._descriptors[name]

    def describe_parameters(self, names):
        return [self.describe_parameter(n) for n in names]

    def add_on_set_parameters_callback(self, callback):
        self._on_set.insert(0, callback)

    def remove_on_set_parameters_callback(self, callback):
        self._on_set.remove(callback)

    def set_parameters(self, parameter_list):
        return [self._set_one(p) for p in parameter_list]

    def set_parameters_atomically(self, parameter_list):
        results = [self._check_one(p) for p in parameter_list]
        failed = [r for r in results if not r.successful]
        if failed:
            return failed[0]
        for p in parameter_list:
            self._set_one(p)
        return SetParametersResult(successful=True)

    def _check_one(self, parameter):
        try:
            self._validated(parameter)
        except Exception as exc:  # noqa: B902 - the reason goes back to the caller
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _validated(self, parameter):
        name = parameter.name
        if name not in self._parameters:
            if not self._allow_undeclared:
                raise ParameterNotDeclaredException(name)
            return Parameter(name, value=parameter.value)
        descriptor = self._descriptors[name]
        if descriptor.read_only:
            raise InvalidParameterValueException(f"parameter {name!r} is read-only")
        value = coerce(name, Parameter.Type(descriptor.type), parameter.value,
                       "set_parameters", descriptor.dynamic_typing)
        check_range(name, value, descriptor)
        candidate = Parameter(name, None if descriptor.dynamic_typing else descriptor.type, value)
        for callback in self._on_set:
            result = callback([candidate])
            if not result.successful:
                raise InvalidParameterValueException(
                    f"parameter {name!r} = {value!r} refused: {result.reason}")
        return candidate

    def _set_one(self, parameter):
        try:
            candidate = self._validated(parameter)
        except Exception as exc:  # noqa: B902 - the reason goes back to the caller
            return SetParametersResult(successful=False, reason=str(exc))
        self._parameters[parameter.name] = candidate
        if parameter.name == "use_sim_time":
            self._apply_sim_time(candidate.value)
        return SetParametersResult(successful=True)

    # --- simulated time --------------------------------------------------------------------
    def _apply_sim_time(self, enabled):
        if enabled and self._clock_sub is None:
            self._clock._set_ros_time_is_active(True)
            self._clock_sub = self.create_subscription(
                get_message("rosgraph_msgs/msg/Clock"), "/clock", self._on_clock,
                QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        elif not enabled and self._clock_sub is not None:
            self.destroy_subscription(self._clock_sub)
            self._clock_sub = None
            self._clock._set_ros_time_is_active(False)

    def _on_clock(self, msg):
        self._clock.set_ros_time_override(Time.from_msg(msg.clock))


class _Override:
    def __init__(self, name, value, source):
        self.name, self.value, self.source = name, value, source
