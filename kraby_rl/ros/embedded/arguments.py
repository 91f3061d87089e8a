"""ROS 2 command-line arguments: `--ros-args` sections, remaps, parameters and params files.

Accepted, as in rcl: `--ros-args ... [--]` (any number of sections), `-r/--remap
[node:]from:=to`, `-p/--param name:=value` (the value is YAML), `--params-file FILE`,
`--log-level [name:=]level`. Params files are ROS 2 YAML::

    /**:                      # every node
      ros__parameters:
        use_sim_time: false
    /kraby/policy_node:       # one node by fully qualified name ('*' = one token, '**' = any)
      ros__parameters:
        control:
          rate_hz: 50.0       # nested keys become 'control.rate_hz'

For a node, wildcard sections apply first, then sections naming it exactly, then `-p`
values, each group in the order given.
"""

import os
import re

import yaml

from .names import InvalidNameError, RemapRule

LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


class RosArgumentError(ValueError):
    """A malformed `--ros-args` section, remap rule, parameter or params file."""


class ParameterOverride:
    """One value for a parameter, with where it came from (for error messages)."""

    def __init__(self, node_pattern, name, value, source):
        self.node_pattern = node_pattern
        self.name = name
        self.value = value
        self.source = source
        self.wildcard = "*" in node_pattern

    def matches(self, node_fqn):
        return _pattern_regex(self.node_pattern).match(node_fqn) is not None


def _pattern_regex(pattern):
    if not pattern.startswith("/"):
        pattern = "/" + pattern
    out = ""
    for part in re.split(r"(\*\*|\*)", pattern):
        if part == "**":
            out += ".*"
        elif part == "*":
            out += "[^/]*"
        else:
            out += re.escape(part)
    return re.compile("^" + out.replace("/.*", "(/.*)?") + "$")


class RosArguments:
    """The parsed ROS arguments of a process (global) or of one node (`cli_args`)."""

    def __init__(self, remaps=(), overrides=(), log_levels=None, unparsed=()):
        self.remaps = list(remaps)
        self.overrides = list(overrides)
        self.log_levels = dict(log_levels or {})
        self.unparsed = list(unparsed)

    def parameters_for(self, node_fqn):
        """{name: ParameterOverride} for a node, precedence applied (later wins)."""
        result = {}
        ordered = [o for o in self.overrides if o.wildcard and o.source != "-p"] + \
                  [o for o in self.overrides if not o.wildcard and o.source != "-p"] + \
                  [o for o in self.overrides if o.source == "-p"]
        for override in ordered:
            if override.matches(node_fqn):
                result[override.name] = override
        return result


def parse_arguments(args):
    """Parse a full argv (or a node's cli_args) into RosArguments.

    Raises:
        RosArgumentError: naming the argument, what was expected and what was found.
    """
    remaps, overrides, levels, unparsed = [], [], {}, []
    args = list(args or [])
    i, in_ros = 0, False
    while i < len(args):
        arg = args[i]
        if arg == "--ros-args":
            in_ros = True
        elif not in_ros:
            unparsed.append(arg)
        elif arg == "--":
            in_ros = False
        elif arg in ("-r", "--remap", "-p", "--param", "--params-file", "--log-level",
                     "-e", "--enclave"):
            if i + 1 >= len(args):
                raise RosArgumentError(f"--ros-args: {arg} expects a value after it, "
                                       "found nothing")
            value = args[i + 1]
            i += 1
            if arg in ("-r", "--remap"):
                try:
                    remaps.append(RemapRule(value))
                except InvalidNameError as exc:
                    raise RosArgumentError(f"--ros-args {arg} {value}: {exc}") from None
            elif arg in ("-p", "--param"):
                name, parsed = _parse_param(value)
                overrides.append(ParameterOverride("/**", name, parsed, "-p"))
            elif arg == "--params-file":
                overrides.extend(load_params_file(value))
            elif arg == "--log-level":
                name, _, level = value.rpartition(":=")
                if level.lower() not in LOG_LEVELS:
                    raise RosArgumentError(f"--ros-args --log-level {value}: expected one of "
                                           f"{', '.join(LOG_LEVELS)}, found {level!r}")
                levels[name] = level.lower()
        elif arg.startswith("--") or arg.startswith("-"):
            raise RosArgumentError(
                f"--ros-args: unknown option {arg!r} (known: -r/--remap, -p/--param, "
                "--params-file, --log-level, -e/--enclave)")
        else:
            raise RosArgumentError(f"--ros-args: unexpected argument {arg!r}; "
                                   "end the ROS section with '--' before other arguments")
        i += 1
    return RosArguments(remaps, overrides, levels, unparsed)


def remove_ros_args(args):
    """argv without its `--ros-args` sections (rclpy.utilities.remove_ros_args)."""
    return parse_arguments(args).unparsed


def _parse_param(text):
    if ":=" not in text:
        raise RosArgumentError(f"--ros-args -p {text}: expected 'name:=value'")
    name, raw = text.split(":=", 1)
    if not name:
        raise RosArgumentError(f"--ros-args -p {text}: the parameter name is empty")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as exc:
        raise RosArgumentError(f"--ros-args -p {text}: the value is not valid YAML ({exc})") \
            from None
    return name, value


def load_params_file(path):
    """ParameterOverrides from a ROS 2 params file.

    Raises:
        RosArgumentError: naming the file and the section that is wrong.
    """
    if not os.path.isfile(path):
        raise RosArgumentError(f"--params-file {path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise RosArgumentError(f"--params-file {path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise RosArgumentError(f"--params-file {path}: expected a mapping of node names, "
                               f"found {type(data).__name__}")
    overrides = []
    for node_key, section in data.items():
        node_key = str(node_key)
        if not isinstance(section, dict) or "ros__parameters" not in section:
            raise RosArgumentError(
                f"--params-file {path}: section {node_key!r} must contain 'ros__parameters:' "
                f"(found {sorted(section) if isinstance(section, dict) else section!r})")
        params = section["ros__parameters"] or {}
        if not isinstance(params, dict):
            raise RosArgumentError(f"--params-file {path}: {node_key}.ros__parameters must be "
                                   f"a mapping, found {params!r}")
        for name, value in _flatten(params):
            overrides.append(ParameterOverride(node_key, name, value, path))
    return overrides


def _flatten(mapping, prefix=""):
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, name + ".")
        else:
            yield name, value
