"""minitorch_cnn imports without circles: the graph of its modules' imports of each other,
read from the source with ast, has no cycle -- neither among the imports run when a module
is loaded nor once the imports inside functions (the lazy ones) are counted too."""
import ast
import pathlib

import pytest

import minitorch_cnn

PACKAGE = pathlib.Path(minitorch_cnn.__file__).parent


def modules():
    """{dotted module name: (path, is a package __init__)} of every .py file in the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def imports(name, path, is_package, known, module_level):
    """The package's modules that ``name`` imports: ``from .x import y`` is an edge to x.y when
    that is a module, else to x (importing x.y also runs x's __init__, which is not counted:
    a package's parts may use each other without a circle through it)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if is_package else name.rpartition(".")[0]
    nodes = tree.body if module_level else ast.walk(tree)
    out = set()

    def resolve(dotted):
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted

    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out.update(resolve(t) for t in targets if t.split(".")[0] == PACKAGE.name)
    out.discard("")
    out.discard(name)
    return out


def cycle(graph):
    """One cycle of ``graph`` as a list of names (first == last), or None."""
    state = {}

    def visit(v, path):
        state[v] = "open"
        for w in sorted(graph[v]):
            if state.get(w) == "open":
                return path[path.index(w):] + [w]
            if w not in state:
                found = visit(w, path + [w])
                if found:
                    return found
        state[v] = "done"
        return None

    for v in sorted(graph):
        if v not in state:
            found = visit(v, [v])
            if found:
                return found
    return None


@pytest.mark.parametrize("module_level", [True, False], ids=["module-level", "with-lazy"])
def test_the_package_has_no_import_circle(module_level):
    known = modules()
    graph = {n: imports(n, p, pkg, known, module_level) for n, (p, pkg) in known.items()}
    assert len(graph) > 50 and "minitorch_cnn.nn.conv" in graph["minitorch_cnn.nn"]
    found = cycle(graph)
    assert found is None, "import circle: " + " -> ".join(found)


def test_the_tracer_depends_on_nn_only_and_the_fast_path_not_on_summary():
    known = modules()

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            n = todo.pop()
            for m in imports(n, *known[n], known, module_level=False):
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
        return seen

    assert {m.split(".")[1] for m in reach("minitorch_cnn.trace")} <= {"nn", "kernels"}
    assert "minitorch_cnn.summary" not in reach("minitorch_cnn.fast")


def test_the_cycle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycle(graph) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
