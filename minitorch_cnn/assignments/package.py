"""The package a student copy holds, and the one each task is graded in: the teaching path alone.

:func:`write` copies the reference package, minus what would answer a task:

* the fast path (``fast/``) becomes a stub whose ``compile(model)`` returns the
  model (it holds im2col + GEMM convolutions, fused BatchNorm and ReLU);
* the Numba kernels become the NumPy twins (the twins are tasks themselves),
  and the Winograd kernels (another convolution) are left out;
* the fused kernels that compute a task's answer (:data:`WITHHELD`) keep their
  signature and docstring and raise;
* in ``assignments/``, the hints' helpers (``explain*``: they compute the
  mistaken answers, some of them one character from the right one) raise, and
  the variants' solutions are not copied;
* a task's ``redact`` docstrings (those that describe its answer) are cut.

Every file with task regions is passed through ``render(rel, source)``:
``make`` blanks them; the grader keeps the reference's (:func:`base`) and
writes, for each task, the files where :func:`assemble` put one student's
code for that task into the reference's.
"""
import ast
import importlib.util
import shutil
from pathlib import Path

from . import markers
from .tasks import EXERCISES, PACKAGE, SOLUTIONS, marked_files, student_path

FAST_STUB = '''"""The fast path is not part of a student copy (``minitorch-cnn assignment make``).

A student copy runs the teaching layers alone, on the NumPy twins of the
kernels: the fast path's kernels compute several tasks' answers.
:func:`compile` returns the model unchanged, so code written for the full
library still runs here (more slowly).
"""


class CompiledModel:
    """Nothing is compiled in a student copy."""


def compile(model, *args, **kwargs):  # noqa: A001 -- minitorch_cnn.compile's name
    """The model itself: a student copy has no fast path."""
    return model
'''

NUMBA_STUB = '''"""The Numba kernels are not part of a student copy: the NumPy twins serve in their place.

(Several of the twins are tasks; their compiled versions would be the answers.)
"""
from .reference import *  # noqa: F401,F403
'''

DROPPED = ("kernels/winograd_numba.py", "kernels/winograd_reference.py")
REPLACED = {"fast/__init__.py": FAST_STUB, "kernels/numba_kernels.py": NUMBA_STUB}
WITHHELD = {"kernels/reference.py": ("batchnorm_backward", "relu_backward")}
WITHHELD_WHY = "not in a student copy: the fast path's fused kernel computes a task's answer"


def _ignore(keep_caches, teaching):
    def ignore(src, names):
        skip = {n for n in names if n.endswith((".nbi", ".nbc")) or
                (not keep_caches and (n == "__pycache__" or n.endswith(".pyc")))}
        here = Path(src).resolve()
        if here == (PACKAGE / "assignments").resolve():
            skip.add("solutions")
        if here == PACKAGE.resolve() and teaching:
            skip.add("fast")
        return skip
    return ignore


def _put(path, text):
    """Write ``path`` anew (never through a link), dropping its compiled copy."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    if text is not None:
        path.write_text(text)


def write(dest, render, redact=(), variants=(), keep_caches=False, teaching=True):
    """The teaching-path package in ``dest`` (a ``minitorch_cnn`` folder).

    ``render(rel, source)`` gives each marked file's text; ``redact`` is
    [(file, class)] whose docstrings are cut; ``variants`` are the solution
    files (``assignments/solutions/...``) this copy holds, at ``exercises/``.
    ``keep_caches``: copy the reference's compiled files too (those of the
    files changed here are dropped): the grader's copies import faster.
    ``teaching=False`` (the instructor's copy) keeps everything else.
    """
    dest = Path(dest)
    shutil.copytree(PACKAGE, dest, ignore=_ignore(keep_caches, teaching))
    for rel in DROPPED if teaching else ():
        _put(dest / rel, None)
    for rel, text in REPLACED.items() if teaching else ():
        _put(dest / rel, text)
    for path in sorted((dest / "assignments").glob("*.py")) if teaching else ():
        text = path.read_text()
        names = [n.name for n in ast.parse(text).body if isinstance(n, ast.FunctionDef)
                 and n.name.lstrip("_").startswith("explain")]
        if names:
            _put(path, withhold(text, names, "the grader's side: not in a student copy"))
    for rel, source in marked_files().items():
        if rel.startswith(SOLUTIONS) and rel not in variants:
            continue
        _put(dest / student_path(rel), render(rel, source))
    for rel, names in WITHHELD.items() if teaching else ():   # after the marked files
        _put(dest / rel, withhold((dest / rel).read_text(), names, WITHHELD_WHY))
    if variants:
        _put(dest / EXERCISES / "__init__.py", '"""Exercises: layers the library does not have."""\n')
    for rel, cls in redact:
        path = dest / student_path(rel)
        _put(path, redact_docstring(path.read_text(), cls))
    for pyc in dest.rglob("__pycache__/*.pyc"):          # nothing compiled from a file not here
        if not (pyc.parent.parent / (pyc.name.split(".")[0] + ".py")).exists():
            pyc.unlink()


def withhold(source, names, why):
    """``source`` with the bodies of its top-level functions ``names`` replaced by a raise
    (the signature and the docstring stay)."""
    lines = source.splitlines(keepends=True)
    nodes = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name in names]
    for node in sorted(nodes, key=lambda n: -n.lineno):
        first = node.body[0]
        has_doc = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None),
                                                             ast.Constant) and \
            isinstance(first.value.value, str)
        start = first.end_lineno if has_doc else first.lineno - 1
        indent = " " * first.col_offset
        lines[start:node.end_lineno] = [f"{indent}raise NotImplementedError({why!r})\n"]
    return "".join(lines)


def redact_docstring(source, cls):
    """``source`` with class ``cls``'s docstring replaced by a line saying why."""
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == cls)
    first = node.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
        return source
    lines = source.splitlines(keepends=True)
    indent = " " * first.col_offset
    lines[first.lineno - 1:first.end_lineno] = [
        f'{indent}"""(Its description is left out of a student copy: it gives a task\'s answer.)"""\n']
    return "".join(lines)


def variant_files(task_names, index):
    """The solution files (``assignments/solutions/...``) that hold these tasks' regions."""
    return {rel for t in task_names for rel, _ in index.get(t, []) if rel.startswith(SOLUTIONS)}


def base(dest, assignment, index):
    """The reference's teaching path for grading ``assignment``: a task's package is these
    files under the few :func:`assemble` writes. :data:`NOT_IMPORTED` need no compiling."""
    write(dest, lambda rel, source: source,
          redact=[r for t in assignment.tasks for r in t.redact],
          variants=variant_files([t.name for t in assignment.tasks], index), keep_caches=True)


NOT_IMPORTED = (r"/(cli|interop|viz|summary|__main__|gradcheck)\.py$|/(training|data)/|"
                r"/assignments/(cli|make|grade|package|runner|report|notebook)\.py$")


def assemble(task, student_pkg, dest, index):
    """The files that make the package ``task`` is graded in, written into ``dest``: each
    file holding the task's regions, with the student's code for ``task`` (from
    ``student_pkg``, a copy's package folder) in place of the reference's. The grading
    child imports these first and everything else from the base (see :func:`base`).
    Returns ({package-relative file: {line: (student file, line)}}, notes); raises
    markers.MarkerError if the student's code cannot be found."""
    student_pkg, dest = Path(student_pkg), Path(dest)
    origins, notes = {}, []
    for rel in dict.fromkeys(rel for rel, _ in index.get(task.name, [])):
        spath = student_path(rel)
        sfile = student_pkg / spath
        if not sfile.exists():
            raise markers.MarkerError(f"{spath} is missing from the student's copy")
        filled = markers.fill((PACKAGE / rel).read_text(), sfile.read_text(), task.name, rel, spath)
        origins[spath] = filled.origins
        notes.extend(filled.notes)
        text = filled.source
        for r, cls in task.redact:
            if r == rel:
                text = redact_docstring(text, cls)
        _put(dest / spath, text)
    return origins, notes
