"""Tasks: what a student writes, its cases, and the reference's results on them.

A :class:`Task` names the marked regions it owns (found by scanning the
package for ``### BEGIN SOLUTION <name>``), the module its checks exercise,
its public cases and a generator of hidden ones. Its check function
``run(mod, **params)`` computes named results with the task's module ``mod``
(the reference's, or the one a student copy holds): every check function of
the built-in assignments takes that module first and reaches the code under
test through it. :func:`reference_results` is the one place the reference's
results are computed (``make`` stores the public ones, ``grade`` compares with
them); :func:`run_case` is the one place a case is run on some code (the
grading child runs it on the student's code, a copy's public tests too).
"""
import importlib
import random
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import markers
from .compare import Expected

PACKAGE = Path(__file__).resolve().parents[1]           # the reference minitorch_cnn/
SOLUTIONS = "assignments/solutions/"                      # variant references (not copied)
EXERCISES = "exercises/"                                  # where variants go in a student copy


def student_path(relpath):
    """Package-relative path of a reference file in a student copy."""
    if relpath.startswith(SOLUTIONS):
        return EXERCISES + relpath[len(SOLUTIONS):]
    return relpath


def module_name(relpath):
    return "minitorch_cnn." + relpath[:-3].replace("/", ".").removesuffix(".__init__")


@dataclass
class Case:
    """One set of inputs; each named result it produces is one scored check."""
    name: str
    params: dict = field(default_factory=dict)
    weight: float = 1.0
    hidden: bool = False


@dataclass
class Task:
    """A piece of code a student writes, with its checks.

    ``run(mod, **params)`` returns ``{result name: value}`` computed with the
    code in ``mod`` (the task's module); ``explain(mod, params, values)`` may
    wrap the reference's values in :class:`~.compare.Expected` with the
    mistakes that would explain a wrong answer (the grader's side only: a
    student copy does not hold its body). ``hidden(rng)`` draws extra cases
    for the instructor's ``--key``. Results that are strings or lists of
    strings (an architecture's layers) are *structural*: they are stored and
    compared as salted digests, never shown.

    ``extra``: an optional task outside the assignment's total. ``blanks``:
    blank the region's call arguments with ``___`` instead of removing its code
    (the keywords listed are kept). ``redact``: (file, class) whose docstring
    describes the answer, left out of a student copy.
    """
    name: str
    title: str
    points: float
    module: str                  # package-relative file the checks import ("nn/conv.py")
    run: object
    cases: list
    doc: str = ""                # the docs page that derives it
    question: str = ""
    explain: object = None
    hidden: object = None
    backend: str = "numpy"       # the kernels the checks run on (the NumPy twins are tasks too)
    uses: tuple = ()             # other tasks whose code the checks run through (in a copy)
    extra: bool = False
    blanks: tuple = None
    redact: tuple = ()

    def mod(self, student=False):
        return importlib.import_module(module_name(student_path(self.module) if student else self.module))

    def all_cases(self, key=None):
        cases = list(self.cases)
        if key is not None and self.hidden is not None:
            seed = zlib.crc32(f"{key}/{self.name}".encode())
            for c in self.hidden(np.random.default_rng(seed)):
                c.hidden = True
                c.name = "hidden: " + c.name
                c.params = plain(c.params)
                cases.append(c)
        return cases


def plain(value):
    """``value`` with NumPy scalars made Python's (a case's inputs travel as literals)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------- the regions
def marked_files(root=PACKAGE):
    """{package-relative path: source} of every reference file with SOLUTION markers."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("assignments/") and not rel.startswith(SOLUTIONS):
            continue
        text = path.read_text()
        if "### BEGIN SOLUTION" in text:
            out[rel] = text
    return out


def region_index(root=PACKAGE):
    """{task: [(relpath, qualname), ...]}: the functions holding each task's regions."""
    index = {}
    for rel, text in marked_files(root).items():
        for task in markers.tasks_in(text):
            for q in markers.functions_of(text, task, rel):
                index.setdefault(task, []).append((rel, q))
    return index


# ------------------------------------------------------------------- running
def seed_case(case):
    """The same global random state for the reference's run and the student's."""
    seed = zlib.crc32(case.name.encode())
    np.random.seed(seed)
    random.seed(seed)


def run_case(task, case, mod):
    """``task.run`` on one case with the code in ``mod``, on the task's kernels."""
    from .. import kernels
    previous = kernels.set_backend(task.backend)
    try:
        seed_case(case)
        return task.run(mod, **case.params)
    finally:
        kernels.set_backend(previous)


def reference_results(task, key=None, cases=None):
    """{case name: {result: Expected}}: the reference's results (with the mistakes that
    would explain a wrong answer) on ``cases`` (default: the public ones, and the
    hidden ones ``key`` draws). The one place they are computed."""
    from .. import kernels
    ref = task.mod()
    out = {}
    for c in task.all_cases(key) if cases is None else cases:
        values = run_case(task, c, ref)
        with kernels.use_backend(task.backend):            # the mistakes on the same kernels
            wrapped = task.explain(ref, c.params, values) if task.explain else {}
        out[c.name] = {k: wrapped.get(k, Expected(v)) for k, v in values.items()}
    return out


@dataclass
class Check:
    """One scored check: a result of a case."""
    case: str
    result: str
    weight: float
    passed: bool
    message: str = ""
    hidden: bool = False

    @property
    def name(self):
        return f"{self.case}: {self.result}"


def score(task, checks):
    total = sum(c.weight for c in checks)
    got = sum(c.weight for c in checks if c.passed)
    return 0.0 if total == 0 else round(task.points * got / total, 2)


def describe_exception(exc):
    """One line for a student's exception (a stub's NotImplementedError: 'not written yet')."""
    if isinstance(exc, NotImplementedError) and str(exc).startswith("task "):
        return "not written yet (the stub raises NotImplementedError)"
    if isinstance(exc, NameError) and "'___'" in str(exc):
        return "a blank ___ is not filled in yet (NameError)"
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 300 else text[:297] + "..."


def frames(exc):
    """[(file, line)] of the exception's traceback, innermost last."""
    return [(f.f_code.co_filename, lineno) for f, lineno in traceback.walk_tb(exc.__traceback__)]
