"""Tasks: what a student writes, how it is checked, and how it is graded in isolation.

A :class:`Task` names the marked regions it owns (found by scanning the
package for ``### BEGIN SOLUTION <name>``), the module its checks exercise,
its public cases and a generator of hidden ones. A case's ``run`` computes
named results with whatever code is installed; the reference's results,
computed first, are what the student's must equal.

Isolation (:func:`install`): for task T, each function holding one of T's
regions is rebuilt from the *reference* source with the student's lines put
in place of T's regions (other tasks' regions in the same function stay the
reference's), compiled in a copy of the reference module's namespace, and
set on the reference class or module. Everything else stays the reference.
"""
import importlib
import linecache
import random
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import markers
from .compare import Expected
from .public import compare_result

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
    code currently installed (``mod`` is the task's module, in the reference
    package or in a student copy); ``explain(mod, params, values)`` may wrap
    the reference's values in :class:`~.compare.Expected` with the
    mistakes that would explain a wrong answer. ``hidden(rng)`` draws extra
    cases for the instructor's ``--key``.
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

    def mod(self, student=False):
        return importlib.import_module(module_name(student_path(self.module) if student else self.module))

    def all_cases(self, key=None):
        cases = list(self.cases)
        if key is not None and self.hidden is not None:
            seed = zlib.crc32(f"{key}/{self.name}".encode())
            for c in self.hidden(np.random.default_rng(seed)):
                c.hidden = True
                c.name = "hidden: " + c.name
                cases.append(c)
        return cases

    def expected(self, case, mod):
        values = self.run(mod, **case.params)
        wrapped = self.explain(mod, case.params, values) if self.explain else {}
        return {k: wrapped.get(k, Expected(v)) for k, v in values.items()}


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


# ----------------------------------------------------------------- isolation
class Installed:
    """The student's code for one task, set on the reference package (until ``undo``)."""

    def __init__(self):
        self._undo = []
        self.notes = []          # e.g. "markers gone: graded the whole function"
        self.origins = {}        # compiled filename -> per-line origins

    def set(self, owner, name, value):
        had = name in vars(owner)
        self._undo.append((owner, name, vars(owner).get(name), had))
        setattr(owner, name, value)

    def undo(self):
        for owner, name, old, had in reversed(self._undo):
            if had:
                setattr(owner, name, old)
            else:
                delattr(owner, name)
        self._undo.clear()


class StudentCodeError(RuntimeError):
    """The student's module-level additions (imports, helpers) fail to run."""


def install(task, student_root, index=None, root=PACKAGE):
    """Put the student's code for ``task`` (from ``student_root``, a copy's package folder)
    in place of the reference's. Raises markers.MarkerError, SyntaxError or
    StudentCodeError if it cannot; anything else is the grader's fault."""
    index = region_index(root) if index is None else index
    done = Installed()
    namespaces = {}
    for rel, qualname in index.get(task.name, []):
        ref_source = (root / rel).read_text()
        spath = student_path(rel)
        sfile = Path(student_root) / spath
        if not sfile.exists():
            raise markers.MarkerError(f"{spath} is missing from the student's copy")
        student_source = sfile.read_text()
        module = importlib.import_module(module_name(rel))
        if rel not in namespaces:
            ns = dict(vars(module))
            extras = markers.student_extras(student_source, ref_source)
            if extras:
                try:
                    exec(compile(extras, f"<{spath}: your imports and helpers>", "exec"), ns)
                except Exception as e:  # noqa: BLE001 -- the student's code
                    raise StudentCodeError(describe_exception(e)) from None
            namespaces[rel] = ns
        ns = namespaces[rel]
        sp = markers.splice(ref_source, student_source, task.name, qualname, rel, spath)
        if sp.missing:
            done.notes.append(f"the task markers in {spath} are gone: graded your whole "
                              f"{qualname}")
        filename = f"<graded {task.name}: {qualname}>"
        name = qualname.split(".")[-1]
        body = "".join("    " + line if line.strip() else "\n"
                       for line in sp.source.splitlines(keepends=True))
        factory = f"def __grading_factory(__class__):\n{body}    return {name}\n"
        done.origins[filename] = [None] + sp.origins
        linecache.cache[filename] = (len(factory), None, factory.splitlines(True), filename)
        try:
            code = compile(factory, filename, "exec")
        except SyntaxError as e:
            o = done.origins[filename][e.lineno - 1] if e.lineno and e.lineno <= len(
                done.origins[filename]) else None
            raise SyntaxError(f"{e.msg}" + (f" at {o[0]}:{o[1]}" if o else "")) from None
        exec(code, ns)
        owner_name = qualname.split(".")[0] if "." in qualname else None
        owner = getattr(module, owner_name) if owner_name else module
        func = ns.pop("__grading_factory")(owner if owner_name else None)
        done.set(owner, name, func)
        ns[name] = func if owner_name is None else ns.get(name)
    return done


def where(exc, origins):
    """'file:line' of the deepest traceback frame that is the student's code, else ''."""
    best = ""
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        fname = frame.f_code.co_filename
        if fname in origins:
            o = origins[fname][lineno - 1] if 0 < lineno <= len(origins[fname]) else None
            if o:
                best = f"{o[0]}:{o[1]}"
        elif fname.startswith("<") and "your imports" in fname:
            best = fname
    return best


def describe_exception(exc, origins=None):
    if isinstance(exc, NotImplementedError) and str(exc).startswith("task "):
        text = "not written yet (the stub raises NotImplementedError)"
    else:
        text = f"{type(exc).__name__}: {exc}".strip()
    if len(text) > 300:
        text = text[:297] + "..."
    at = where(exc, origins or {})
    return text + (f" (at {at})" if at else "")


# ------------------------------------------------------------------- running
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


def run_checks(task, student_mod_loader=None, key=None, installer=None, expected=None,
               only=None):
    """Run every case of ``task``; returns (checks, notes).

    ``expected`` (case name -> {result: Expected}) defaults to the reference's
    results computed here, before ``installer()`` puts the student's code in.
    """
    from .. import kernels
    previous = kernels.set_backend(task.backend)
    notes, checks = [], []
    try:
        cases = [c for c in task.all_cases(key) if only is None or c.name in only]
        if expected is None:
            ref = task.mod()
            expected = {}
            for c in cases:
                _seed(c)
                expected[c.name] = task.expected(c, ref)
        origins = {}
        if installer is not None:
            try:
                done = installer()
            except (markers.MarkerError, SyntaxError) as e:
                msg = f"could not read your code: {e}"
                return [Check(c.name, r, c.weight / len(expected[c.name]), False, msg, c.hidden)
                        for c in cases for r in expected[c.name]], notes
            except StudentCodeError as e:
                msg = f"your file's imports or helpers fail: {e}"
                return [Check(c.name, r, c.weight / len(expected[c.name]), False, msg, c.hidden)
                        for c in cases for r in expected[c.name]], notes
            notes.extend(done.notes)
            origins = done.origins
        mod = student_mod_loader() if student_mod_loader else task.mod()
        for c in cases:
            want = expected[c.name]
            w = c.weight / max(len(want), 1)
            _seed(c)
            try:
                got = task.run(mod, **c.params)
            except Exception as e:  # noqa: BLE001 -- any student error costs this case only
                msg = describe_exception(e, origins)
                checks.extend(Check(c.name, r, w, False, msg, c.hidden) for r in want)
                continue
            for r, exp in want.items():
                if r not in got:
                    checks.append(Check(c.name, r, w, False, f"{r} was not computed", c.hidden))
                    continue
                try:
                    ok, msg = compare_result(r, got[r], exp)
                except Exception as e:  # noqa: BLE001 -- a result of an unexpected type
                    ok, msg = False, f"{r}: cannot compare ({describe_exception(e)})"
                checks.append(Check(c.name, r, w, ok, msg, c.hidden))
    finally:
        kernels.set_backend(previous)
    return checks, notes


def _seed(case):
    """The same global random state for the reference's run and the student's."""
    seed = zlib.crc32(case.name.encode())
    np.random.seed(seed)
    random.seed(seed)


def score(task, checks):
    total = sum(c.weight for c in checks)
    got = sum(c.weight for c in checks if c.passed)
    return 0.0 if total == 0 else round(task.points * got / total, 2)
