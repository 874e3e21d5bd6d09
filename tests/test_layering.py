"""The package's layers: the teaching code does not reach up into what is built on it.

``nn``, ``kernels``, ``models``, ``data`` and ``optim`` are the library a student reads;
``fast`` (compile), ``training``, ``assignments`` and the command line are built on top
of them. An import the wrong way -- at module level or inside a function -- would make
a layer depend on its users; this test reads every import of the lower packages (ast,
relative imports resolved) and lists each one that does.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minitorch_cnn"
LOWER = ("nn", "kernels", "models", "data", "optim")
UPPER = ("fast", "training", "assignments", "cli", "__main__")


def imports(path, root=PACKAGE):
    """(line, names) of every import statement in ``path``, wherever it is (module level
    or in a function), relative names resolved: ``from .. import fast`` in nn/ names
    minitorch_cnn and minitorch_cnn.fast."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    package = parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield node.lineno, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            module = ".".join(base + ((node.module,) if node.module else ()))
            yield node.lineno, [module] + [f"{module}.{alias.name}" for alias in node.names]


def upward(path, root=PACKAGE):
    """One line for each import of ``path`` that reaches a package of UPPER."""
    bad = []
    for line, names in imports(path, root):
        hits = [n for n in names if n.split(".")[:1] == ["minitorch_cnn"]
                and n.split(".")[1:2] and n.split(".")[1] in UPPER]
        if hits:
            bad.append(f"{path.relative_to(root.parent)}:{line} imports {hits[0]}")
    return bad


def test_the_lower_packages_import_nothing_from_the_upper_ones():
    files = [f for sub in LOWER for f in sorted((PACKAGE / sub).rglob("*.py"))]
    assert len(files) > 30
    problems = [p for f in files for p in upward(f)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source, expected", [
    ("from ..fast import compile\n", ["minitorch_cnn.fast"]),
    ("def f():\n    from .. import training\n", ["minitorch_cnn.training"]),
    ("import minitorch_cnn.cli\n", ["minitorch_cnn.cli"]),
    ("from ..assignments.tasks import run\n", ["minitorch_cnn.assignments.tasks"]),
    ("from . import conv\nfrom ..kernels import im2col\n", []),
])
def test_the_check_sees_each_kind_of_import(tmp_path, source, expected):
    """A file in nn/ with an upward import at module level, in a function, absolute or
    relative, is caught; imports within and across the lower packages are not."""
    root = tmp_path / "minitorch_cnn"
    (root / "nn").mkdir(parents=True)
    path = root / "nn" / "planted.py"
    path.write_text(source)
    found = upward(path, root)
    assert len(found) == len(expected) and all(e in f for e, f in zip(expected, found)), found
