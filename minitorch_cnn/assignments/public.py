"""The public checks a student copy carries: the reference's results on the public cases, stored.

``assignment make`` runs every public case with the reference and writes the
results to ``tests/expected/<task>.npz`` and ``.json``; the copy's tests run
the student's code on the same cases and compare (with the same hints).
Arrays larger than :data:`LARGE` entries are stored as their shape and
:data:`SAMPLES` fixed samples and :data:`PROJECTIONS` weighted sums, which still show a sign flip or a
constant factor. Hidden cases are never written.
"""
import json
from pathlib import Path

import numpy as np

from .compare import Expected, compare

LARGE = 20000
PROJECTIONS = 4
SAMPLES = 2048


def _project(a):
    """A large array's summary: fixed samples of it and a few weighted sums (linear in a,
    so a sign flip or a constant factor still shows)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    idx = np.random.default_rng(a.size).integers(0, a.size, SAMPLES)
    i = np.arange(a.size, dtype=np.float64)
    sums = [a.sum()] + [a @ np.cos(0.7 * k * i + k) for k in range(1, PROJECTIONS)]
    return np.concatenate([a[idx], sums])


def _kind(v):
    if isinstance(v, str):
        return "str"
    if isinstance(v, (list, tuple)):
        return "list"
    if isinstance(v, (bool, np.bool_, int, np.integer)):
        return "int"
    return "array"


def save(task, expected, folder):
    """Write ``expected`` ({case name: {result: Expected}}) for ``task`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays, meta = {}, {}
    for ci, (case, results) in enumerate(expected.items()):
        meta[case] = {}
        for ri, (name, exp) in enumerate(results.items()):
            v, key = exp.value, f"c{ci}r{ri}"
            kind = _kind(v)
            entry = {"kind": kind, "factors": [list(f) for f in exp.factors]}
            if kind in ("str", "list", "int"):
                entry["value"] = v if kind != "int" else int(v)
                entry["mistakes"] = [[h, list(m)] for h, m in exp.mistakes]
            else:
                a = np.asarray(v, dtype=np.float64)
                entry["shape"] = list(a.shape)
                entry["projected"] = a.size > LARGE
                conv = _project if entry["projected"] else (lambda x: np.asarray(x, np.float64))
                arrays[key] = conv(a)
                entry["mistakes"] = []
                for mi, (h, m) in enumerate(exp.mistakes):
                    arrays[f"{key}m{mi}"] = conv(m)
                    entry["mistakes"].append([h, f"{key}m{mi}"])
                entry["masks"] = []
                if not entry["projected"]:
                    for mi, (h, m) in enumerate(exp.masks):
                        arrays[f"{key}k{mi}"] = np.broadcast_to(m, a.shape).copy()
                        entry["masks"].append([h, f"{key}k{mi}"])
                entry["key"] = key
            meta[case][name] = entry
    np.savez_compressed(folder / f"{task.name}.npz", **arrays)
    (folder / f"{task.name}.json").write_text(json.dumps(meta, indent=1))


class Projected(Expected):
    """An Expected stored as projections: the student's array is projected before comparing."""


def load(task, folder):
    """{case name: {result: Expected}} as :func:`save` wrote them."""
    folder = Path(folder)
    meta = json.loads((folder / f"{task.name}.json").read_text())
    arrays = np.load(folder / f"{task.name}.npz")
    out = {}
    for case, results in meta.items():
        out[case] = {}
        for name, e in results.items():
            factors = [tuple(f) for f in e["factors"]]
            if e["kind"] == "str" or e["kind"] == "int":
                out[case][name] = Expected(e["value"], factors=factors)
            elif e["kind"] == "list":
                out[case][name] = Expected(e["value"], mistakes=[tuple(m) for m in e["mistakes"]])
            else:
                cls = Projected if e["projected"] else Expected
                exp = cls(arrays[e["key"]], mistakes=[(h, arrays[k]) for h, k in e["mistakes"]],
                          masks=[(h, arrays[k]) for h, k in e.get("masks", [])], factors=factors)
                exp.shape = tuple(e["shape"])
                out[case][name] = exp
    return out


def compare_result(name, got, exp):
    """compare(), projecting the student's value first when the reference is stored projected."""
    if isinstance(exp, Projected):
        try:
            a = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            return False, f"{name}: got a {type(got).__name__}, expected an array of shape {exp.shape}"
        if a.shape != exp.shape:
            return False, f"{name} has shape {a.shape}, expected {exp.shape}"
        if not np.isfinite(a).all():
            return False, f"{name} has NaN/inf entries"
        got = _project(a)
    return compare(name, got, exp)


# ------------------------------------------------------- inside a student copy
def copy_root():
    """The folder of the student copy this package belongs to (it holds .assignment.json)."""
    from .. import __file__ as init
    return Path(init).resolve().parents[1]


def manifest(root=None):
    root = Path(root) if root else copy_root()
    path = root / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: this is not a student copy made by "
                                "`minitorch-cnn assignment make`")
    return json.loads(path.read_text())


MANIFEST = ".assignment.json"


def case_names(root=None):
    """[(task, case)] of the public cases of every task of the copy's assignment (the
    ones not blanked pass as they come: the rest of the copy works)."""
    from . import get_assignment
    root = Path(root) if root else copy_root()
    out = []
    for t in get_assignment(manifest(root)["assignment"]).tasks:
        path = root / "tests" / "expected" / f"{t.name}.json"
        if path.exists():
            out.extend((t.name, c) for c in json.loads(path.read_text()))
    return out


def check_case(task_name, case, root=None):
    """Run one public case on this copy's code; AssertionError listing what fails."""
    from . import get_assignment
    from .tasks import run_checks
    root = Path(root) if root else copy_root()
    task = get_assignment(manifest(root)["assignment"]).task(task_name)
    expected = load(task, root / "tests" / "expected")
    checks, _ = run_checks(task, student_mod_loader=lambda: task.mod(student=True),
                           expected={case: expected[case]}, only={case})
    failed = [c for c in checks if not c.passed]
    if failed:
        raise AssertionError("\n".join(f"{c.name}: {c.message}" for c in failed))
    return checks


def check(task_name, root=None):
    """Every public case of one task (what a notebook's graded cell runs); prints a summary."""
    root = Path(root) if root else copy_root()
    problems, n = [], 0
    for t, case in case_names(root):
        if t != task_name:
            continue
        n += 1
        try:
            check_case(t, case, root)
        except AssertionError as e:
            problems.append(str(e))
    if problems:
        raise AssertionError(f"{task_name}: {len(problems)} of {n} public cases fail\n" +
                             "\n".join(problems))
    print(f"{task_name}: all {n} public cases pass")
