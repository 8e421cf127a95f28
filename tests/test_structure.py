"""The shape of the code, as its reader relies on it: modules that import one another in one direction
only, and a model module that neither imports a backend nor reaches into a private attribute."""
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
    assert {"kerasrnn.model", "kerasrnn.cli", "kerasrnn_export.bundle", "kerasrnn_edge.sampler"} <= graph.keys()
    assert "kerasrnn.run" in graph["kerasrnn_export.bundle"]  # the graph sees imports across the packages
    assert "kerasrnn_export.bundle" in graph["kerasrnn.cli"]  # and those inside functions
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


def test_the_model_module_imports_no_backend_and_no_private_attribute():
    tree, _ = modules()["kerasrnn.model"]
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    assert imported == {"keras", "numpy"}
    private = sorted({node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                      and node.attr.startswith("_") and not node.attr.startswith("__")})
    assert private == []
