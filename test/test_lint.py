"""flake8 at the ament line length (99 columns), as ament_flake8 would check it."""

import os
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def test_flake8():
    r = subprocess.run([sys.executable, "-m", "flake8", "--max-line-length", "99",
                        "kraby_rl", "test", "setup.py"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def _imports(path):
    """Every module a Python file imports (absolute names; relative ones resolved)."""
    import ast
    with open(path) as fh:
        tree = ast.parse(fh.read(), path)
    package = os.path.relpath(os.path.dirname(path), ROOT).replace(os.sep, ".")
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _modules_under(folder):
    for dirpath, _dirs, files in os.walk(os.path.join(ROOT, "kraby_rl", folder)):
        for f in files:
            if f.endswith(".py"):
                yield os.path.join(dirpath, f)


def test_core_imports_no_simulator_learning_or_middleware():
    banned = ("pybullet", "torch", "stable_baselines3", "gymnasium", "rclpy", "cyclonedds",
              "kraby_rl.sim", "kraby_rl.envs", "kraby_rl.training", "kraby_rl.ros",
              "kraby_rl.nodes", "kraby_rl.cli")
    assert _offenders("core", banned) == {}


def _offenders(folder, banned):
    found = {os.path.relpath(p, ROOT): sorted(n for n in _imports(p)
                                              if n.split(".")[0] in banned
                                              or n.startswith(banned))
             for p in _modules_under(folder)}
    return {p: n for p, n in found.items() if n}


def test_nodes_never_import_the_cli_or_training():
    """Nodes sit below training and the CLI: gym_bridge's SB3 side is training.bridge."""
    assert _offenders("nodes", ("kraby_rl.cli", "kraby_rl.training")) == {}


def test_the_layering_check_sees_a_lazy_import(tmp_path, monkeypatch):
    pkg = tmp_path / "kraby_rl" / "nodes"
    pkg.mkdir(parents=True)
    (pkg / "x_node.py").write_text("def f():\n    from kraby_rl.training.train import train\n"
                                   "    from ..cli import main\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", str(tmp_path))
    assert _offenders("nodes", ("kraby_rl.cli", "kraby_rl.training")) == {
        os.path.join("kraby_rl", "nodes", "x_node.py"): [
            "kraby_rl.cli", "kraby_rl.cli.main", "kraby_rl.training.train",
            "kraby_rl.training.train.train"]}


def test_package_xml_is_well_formed_format_3():
    """colcon reads package.xml to build the package as ament_python; a file that is not
    well-formed XML (a "--" inside a comment is enough) makes it a plain Python package
    that ROS 2 cannot find (`ros2 pkg prefix kraby_rl`: Package not found)."""
    import xml.etree.ElementTree as ET
    root = ET.parse(os.path.join(ROOT, "package.xml")).getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "kraby_rl"
    assert root.find("export").findtext("build_type") == "ament_python"
