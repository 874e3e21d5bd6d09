"""The public checks a student copy carries: the reference's results on the public cases.

``assignment make`` computes every public case with the reference
(:func:`tasks.reference_results`) and writes ``tests/expected/<task>.npz`` and
``.json``; the copy's tests run the student's code on the same cases and
compare, with the same hints. What is stored reveals no answer:

* structural results (strings, lists of strings: an architecture's layers,
  a blank's value) are stored as salted digests, and the hints that go with
  known mistakes are keyed by the digest of the mistaken value;
* numeric results on fixed inputs are stored as they are (arrays larger than
  :data:`~.compare.LARGE` entries as samples and weighted sums).

Hidden cases are never written.
"""
import json
import secrets
from pathlib import Path

import numpy as np

from .compare import LARGE, Digested, Expected, Projected, compare, digested, is_structural, project
from .tasks import Case, Check, describe_exception, run_case

MANIFEST = ".assignment.json"


def save(task, expected, folder, salt=None):
    """Write ``expected`` ({case name: {result: Expected}}) for ``task`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    salt = salt or secrets.token_hex(8)
    arrays, meta = {}, {}
    for ci, (case, results) in enumerate(expected.items()):
        meta[case] = {}
        for ri, (name, exp) in enumerate(results.items()):
            v, key = exp.value, f"c{ci}r{ri}"
            entry = {"factors": [list(f) for f in exp.factors]}
            if is_structural(v):
                d = digested(exp, salt)
                entry.update(kind="digest", salt=salt, value=d.value, entries=d.entries,
                             mistakes=[list(m) for m in d.mistakes])
            elif isinstance(v, (bool, np.bool_, int, np.integer)):
                entry.update(kind="int", value=int(v))
            else:
                a = np.asarray(v, dtype=np.float64)
                projected = a.size > LARGE
                conv = project if projected else (lambda x: np.asarray(x, np.float64))
                arrays[key] = conv(a)
                entry.update(kind="array", key=key, shape=list(a.shape), projected=projected,
                             mistakes=[], masks=[])
                for mi, (h, m) in enumerate(exp.mistakes):
                    arrays[f"{key}m{mi}"] = conv(m)
                    entry["mistakes"].append([h, f"{key}m{mi}"])
                if not projected:
                    for mi, (h, m) in enumerate(exp.masks):
                        arrays[f"{key}k{mi}"] = np.broadcast_to(m, a.shape).copy()
                        entry["masks"].append([h, f"{key}k{mi}"])
            meta[case][name] = entry
    np.savez_compressed(folder / f"{task.name}.npz", **arrays)
    (folder / f"{task.name}.json").write_text(json.dumps(meta, indent=1))


def load(task, folder):
    """{case name: {result: Expected}} as :func:`save` wrote them."""
    folder = Path(folder)
    meta = json.loads((folder / f"{task.name}.json").read_text())
    arrays = np.load(folder / f"{task.name}.npz", allow_pickle=False)
    out = {}
    for case, results in meta.items():
        out[case] = {}
        for name, e in results.items():
            factors = [tuple(f) for f in e["factors"]]
            if e["kind"] == "digest":
                out[case][name] = Digested(e["value"], mistakes=[tuple(m) for m in e["mistakes"]],
                                           salt=e["salt"], entries=e["entries"])
            elif e["kind"] == "int":
                out[case][name] = Expected(e["value"], factors=factors)
            else:
                kw = dict(mistakes=[(h, arrays[k]) for h, k in e["mistakes"]],
                          masks=[(h, arrays[k]) for h, k in e["masks"]], factors=factors)
                out[case][name] = Projected(arrays[e["key"]], shape=tuple(e["shape"]), **kw) \
                    if e["projected"] else Expected(arrays[e["key"]], **kw)
    return out


def checks_of(case, want, got=None, error=None):
    """The scored checks of one case: its results compared, or all failed with ``error``."""
    w = case.weight / max(len(want), 1)
    if error is not None:
        return [Check(case.name, r, w, False, error, case.hidden) for r in want]
    out = []
    for r, exp in want.items():
        if r not in got:
            out.append(Check(case.name, r, w, False, f"{r} was not computed", case.hidden))
            continue
        try:
            ok, msg = compare(r, got[r], exp)
        except Exception as e:  # noqa: BLE001 -- a result of an unexpected type
            ok, msg = False, f"{r}: cannot compare ({describe_exception(e)})"
        out.append(Check(case.name, r, w, ok, msg, case.hidden))
    return out


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
    root = Path(root) if root else copy_root()
    task = get_assignment(manifest(root)["assignment"]).task(task_name)
    want = load(task, root / "tests" / "expected")[case]
    c = next((c for c in task.cases if c.name == case), Case(case))
    try:
        checks = checks_of(c, want, got=run_case(task, c, task.mod(student=True)))
    except Exception as e:  # noqa: BLE001 -- the student's code
        checks = checks_of(c, want, error=describe_exception(e))
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
