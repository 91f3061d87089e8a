"""ROS 2 names: validation, expansion of relative, private and substituted names, remapping.

Follows rcl's rules (rcl_expand_topic_name, rcl_remap): a relative name is put under the
node's namespace, `~` is the node's fully qualified name, `{node}` and `{ns}` are
substituted, and a remap rule `from:=to` matches on the fully expanded name. The DDS topic
of a ROS 2 topic is `rt` + its fully qualified name.
"""

import re

_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NODE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class InvalidNameError(ValueError):
    """A topic, node or namespace name that ROS 2 would reject."""


def validate_node_name(name):
    if not _NODE_NAME.match(name or ""):
        raise InvalidNameError(
            f"node name {name!r}: expected letters, digits and underscores, "
            "not starting with a digit")
    return name


def normalize_namespace(namespace):
    """'' or None -> '/'; 'robot' -> '/robot'; validated like a topic name."""
    if not namespace:
        return "/"
    if not namespace.startswith("/"):
        namespace = "/" + namespace
    if namespace != "/":
        namespace = namespace.rstrip("/")
        _validate_fqn(namespace, what="namespace")
    return namespace


def _validate_fqn(name, what="topic name"):
    if not name.startswith("/"):
        raise InvalidNameError(f"{what} {name!r}: expected an absolute name")
    if name == "/":
        if what == "namespace":
            return name
        raise InvalidNameError(f"{what} {name!r}: a name cannot be only '/'")
    if name.endswith("/"):
        raise InvalidNameError(f"{what} {name!r}: must not end with '/'")
    for token in name[1:].split("/"):
        if not token:
            raise InvalidNameError(f"{what} {name!r}: must not contain '//'")
        if not _TOKEN.match(token):
            raise InvalidNameError(
                f"{what} {name!r}: token {token!r} must be letters, digits and underscores, "
                "not starting with a digit")
    return name


def expand_topic_name(name, node_name, namespace):
    """The fully qualified name of `name` for a node `node_name` in `namespace`.

    Args:
        name: 'joint_states', '/abs', '~/private', '{node}/x' or '{ns}/x'.
        node_name: the node's name, e.g. 'servo_driver'.
        namespace: the node's absolute namespace, e.g. '/' or '/kraby'.

    Returns:
        The absolute name, e.g. '/kraby/joint_states'.

    Raises:
        InvalidNameError: naming the name and what is wrong with it.
    """
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"topic name {name!r}: expected a non-empty string")
    namespace = normalize_namespace(namespace)
    node_fqn = (namespace.rstrip("/") + "/" + node_name) if node_name else namespace
    expanded = name.replace("{node}", node_name or "").replace("{ns}", namespace) \
        .replace("{namespace}", namespace)
    if re.search(r"[{}]", expanded):
        raise InvalidNameError(f"topic name {name!r}: unknown substitution "
                               "(known: {node}, {ns}, {namespace})")
    if expanded == "~":
        expanded = node_fqn
    elif expanded.startswith("~/"):
        expanded = node_fqn + expanded[1:]
    elif "~" in expanded:
        raise InvalidNameError(f"topic name {name!r}: '~' may only start a name, as '~/...'")
    elif not expanded.startswith("/"):
        expanded = namespace.rstrip("/") + "/" + expanded
    expanded = expanded.replace("//", "/") if expanded.startswith("//") else expanded
    return _validate_fqn(expanded)


def dds_topic_name(fqn):
    """'/kraby/joint_states' -> 'rt/kraby/joint_states' (ROS 2 topics on DDS)."""
    return "rt" + fqn


def ros_topic_name(dds_name):
    """Inverse of `dds_topic_name`; None for DDS topics that are not ROS 2 topics."""
    return dds_name[2:] if dds_name.startswith("rt/") else None


class RemapRule:
    """One `-r [node:]from:=to` rule."""

    def __init__(self, text):
        if ":=" not in text:
            raise InvalidNameError(f"remap rule {text!r}: expected 'from:=to' "
                                   "(optionally 'node_name:from:=to')")
        left, to = text.split(":=", 1)
        self.node = None
        if ":" in left:
            self.node, left = left.split(":", 1)
            validate_node_name(self.node)
        self.source = left
        self.target = to
        if not left or not to:
            raise InvalidNameError(f"remap rule {text!r}: both sides must be non-empty")
        if left == "__node":
            validate_node_name(to)
        elif left == "__ns":
            normalize_namespace(to)
        elif left.startswith("__"):
            raise InvalidNameError(f"remap rule {text!r}: unknown special name {left!r} "
                                   "(known: __node, __ns)")
        self.text = text

    def applies_to(self, node_name):
        return self.node is None or self.node == node_name

    def __repr__(self):
        return f"RemapRule({self.text!r})"


def remap_node(rules, node_name, namespace):
    """Apply `__node:=` and `__ns:=` rules (the first matching one of each wins)."""
    original = node_name
    new_name = new_ns = None
    for rule in rules:
        if not rule.applies_to(original):
            continue
        if rule.source == "__node" and new_name is None:
            new_name = rule.target
        elif rule.source == "__ns" and new_ns is None:
            new_ns = normalize_namespace(rule.target)
    return new_name or node_name, new_ns or namespace


def remap_topic(rules, fqn, node_name, namespace, original_node_name=None):
    """Apply the first topic rule whose expanded `from` equals the expanded name `fqn`."""
    for rule in rules:
        if rule.source.startswith("__") or not rule.applies_to(original_node_name or node_name):
            continue
        if expand_topic_name(rule.source, node_name, namespace) == fqn:
            return expand_topic_name(rule.target, node_name, namespace)
    return fqn
