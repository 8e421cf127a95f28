"""The shape of the code, as its reader relies on it: modules that import one another in one direction
only, model modules that neither import a backend nor reach into a private attribute, writers that know no
model, and a choice between model families made by the families alone."""
import re
import ast
import os

from conftest import REPO

PACKAGES = {"kerasrnn": "kerasrnn", "kerasrnn_edge": "export/kerasrnn_edge",
            "kerasrnn_export": "export/kerasrnn_export"}


def modules():
    """{dotted name: its parsed source} for every module of the three packages."""
    found = {}
    for package, folder in PACKAGES.items():
        for root, _, names in os.walk(os.path.join(REPO, folder)):
            for name in sorted(n for n in names if n.endswith(".py")):
                path = os.path.join(root, name)
                parts = os.path.relpath(path, os.path.join(REPO, folder))[:-3].split(os.sep)
                dotted = ".".join([package] + [p for p in parts if p != "__init__"])
                with open(path, encoding="utf-8") as f:
                    found[dotted] = (ast.parse(f.read(), path), name == "__init__.py")
    return found


def import_graph():
    """{module: the project's modules it imports}, every import statement counted, those inside functions
    too: `from . import x` names the module x where there is one, else the package itself."""
    found = modules()

    def nearest(name):
        while name and name not in found:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for module, (tree, is_package) in found.items():
        package = module if is_package else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(nearest(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                for alias in node.names:
                    name = f"{base}.{alias.name}"
                    targets.add(name if name in found else nearest(base))
        graph[module] = targets - {"", module}
    return graph


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert {"kerasrnn.models", "kerasrnn.cli", "kerasrnn_export.bundle", "kerasrnn_edge.sampler"} <= graph.keys()
    assert "kerasrnn.files" in graph["kerasrnn_export.bundle"]  # the graph sees imports across the packages
    assert "kerasrnn.export" in graph["kerasrnn.cli"]  # and those inside functions
    done, path = set(), []

    def visit(module):
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module):] + [module]))
        if module not in done:
            path.append(module)
            for target in sorted(graph[module]):
                visit(target)
            path.pop()
            done.add(module)
    for module in sorted(graph):
        visit(module)


MODEL_MODULES = ["kerasrnn.models", "kerasrnn.models.family", "kerasrnn.models.language_model",
                 "kerasrnn.models.recurrent", "kerasrnn.models.gpt", "kerasrnn.models.alibi",
                 "kerasrnn.models.mingru", "kerasrnn.models.trace"]


def test_the_model_modules_import_no_backend_and_no_private_attribute():
    found = modules()
    for name in MODEL_MODULES:
        tree, _ = found[name]
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module and not node.level}
        assert imported <= {"keras", "numpy", "inspect", "functools", "dataclasses", "kerasrnn_edge"}, name
        private = sorted({node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                          and node.attr.startswith("_") and not node.attr.startswith("__")})
        assert private == [], name


def test_the_writers_know_no_model():
    """kerasrnn_export and kerasrnn_edge import of kerasrnn its file helpers alone: a family hands them its step
    graphs (kerasrnn.export), they load, build and name no model."""
    for module, targets in import_graph().items():
        if module.startswith(("kerasrnn_export", "kerasrnn_edge")):
            assert {t for t in targets if t.split(".")[0] == "kerasrnn"} <= {"kerasrnn.files"}, module


def test_only_the_families_choose_between_families():
    """No module outside the registry and the GPT family's own names the GPT or its layer."""
    pattern = re.compile(r'is_gpt|"decoder"|model ?== ?"gpt"')
    named = set()
    for folder in ("kerasrnn", "export/kerasrnn_export", "export/kerasrnn_edge", "benchmarks"):
        for root, _, names in os.walk(os.path.join(REPO, folder)):
            for name in (n for n in names if n.endswith(".py")):
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    if pattern.search(f.read()):
                        named.add(os.path.relpath(os.path.join(root, name), REPO))
    assert named <= {"kerasrnn/models/__init__.py", "kerasrnn/models/gpt.py"}
