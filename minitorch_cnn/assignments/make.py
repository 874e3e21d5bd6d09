"""``assignment make``: a student copy (or the instructor's) of the package, with its tests.

The student's copy is a runnable package, the teaching path alone (:mod:`.package`:
no fast path, no Numba kernels, nothing that computes a task's answer), in
which the chosen tasks' regions are replaced by stubs (keeping the
signature, the docstring and the lines around the region) that raise
NotImplementedError naming the task and the docs page, or, for a task with
``blanks``, by its code with ``___`` in place of each argument. Beside it:
public tests with the reference's results on the public cases (structural
ones as salted digests), a README with the questions, points and commands,
the walkthrough as a percent script and as a notebook, the docs pages the
tasks refer to (not those of a task whose page gives the answer), and
``.assignment.json`` for the grader. The instructor's copy (``--solution``)
keeps the whole package, with the solutions and their markers in place.
"""
import hashlib
import json
import shutil
import textwrap
from pathlib import Path

from . import get_assignment, markers, notebook, package, public
from .tasks import PACKAGE, marked_files, reference_results, region_index, student_path

REPO = PACKAGE.parent


def blanks(task):
    """How many ``___`` the regions of a task with ``blanks`` hold in a student copy."""
    n = 0
    for rel, source in marked_files().items():
        lines = source.splitlines(keepends=True)
        for r in markers.find_regions(source, path=rel):
            if r.task == task.name:
                n += markers.blank_arguments(r.body(lines), task.blanks)[1]
    return n


def _stub(task_by_name):
    def stub(name, needs, body):
        t = task_by_name[name]
        if t.blanks is not None:
            lines, _ = markers.blank_arguments(body, t.blanks)
            head = textwrap.wrap(f"Task {name} ({t.points:g} points, {t.points / blanks(t):g} "
                                 f"per blank): fill in each {markers.BLANK}. {t.question}", 80,
                                 initial_indent="# ", subsequent_indent="#   ")
            return head + textwrap.dedent("".join(lines)).rstrip("\n").split("\n")
        lines = textwrap.wrap(f"Task {name} ({t.points:g} points): {t.question}", 80,
                              initial_indent="# ", subsequent_indent="#   ")
        if t.doc:
            lines.append(f"# {t.doc} derives it.")
        if needs:
            lines.append("# The lines after this region use: " + ", ".join(needs) + ".")
        doc = f" -- {t.doc} derives it" if t.doc else ""
        lines.append(f'raise NotImplementedError("task {name}: not written yet{doc}")')
        return lines
    return stub


def make(name, out, solution=False, tasks=None, force=False):
    """Write the copy of assignment ``name`` to ``out``; returns the manifest (a dict)."""
    try:
        assignment = get_assignment(name)
        chosen = [t.name for t in assignment.tasks] if not tasks else list(tasks)
        for t in chosen:
            assignment.task(t)
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} exists and is not empty (use --force to replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    by_name = {t.name: t for t in assignment.tasks}
    index = region_index()
    files = marked_files()
    if solution:
        package.write(out / "minitorch_cnn", lambda rel, source: source,
                      variants=package.variant_files(by_name, index), teaching=False)
    else:
        package.write(out / "minitorch_cnn",
                      lambda rel, source: markers.blank(source, set(chosen), _stub(by_name), rel),
                      redact=[r for t in chosen for r in by_name[t].redact],
                      variants=package.variant_files(by_name, index))
    _public_tests(assignment, [t.name for t in assignment.tasks], out)
    _docs(assignment, chosen, out)
    walkthrough = _walkthrough(assignment, chosen, index)
    (out / "walkthrough.py").write_text(walkthrough)
    nb = notebook.to_notebook(walkthrough, notebook.colab_line("walkthrough.ipynb"))
    (out / "walkthrough.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    manifest = {
        "assignment": name, "title": assignment.title, "tasks": chosen,
        "points": {t: by_name[t].points for t in chosen}, "solution": bool(solution),
        "total": sum(by_name[t].points for t in chosen if not by_name[t].extra),
        "reference": {rel: hashlib.sha256(files[rel].encode()).hexdigest() for rel in sorted(files)},
    }
    (out / public.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    (out / "README.md").write_text(_readme(assignment, chosen, index, solution))
    (out / "pytest.ini").write_text("[pytest]\ntestpaths = tests\naddopts = -ra\n")
    return manifest


def _public_tests(assignment, chosen, out):
    tests = out / "tests"
    (tests / "expected").mkdir(parents=True, exist_ok=True)
    for name in chosen:
        task = assignment.task(name)
        public.save(task, reference_results(task), tests / "expected")
    (tests / "conftest.py").write_text(
        '"""Import the package of this copy, not an installed minitorch_cnn."""\n'
        "import sys\nfrom pathlib import Path\n\n"
        "ROOT = Path(__file__).resolve().parents[1]\n"
        "sys.path.insert(0, str(ROOT))\n"
        "import minitorch_cnn  # noqa: E402\n\n"
        "if Path(minitorch_cnn.__file__).resolve().parents[1] != ROOT:\n"
        "    raise RuntimeError(f'minitorch_cnn was imported from {minitorch_cnn.__file__}, '\n"
        "                       f'not from this copy ({ROOT}); run pytest from {ROOT}')\n")
    (tests / f"test_{assignment.name.replace('-', '_')}.py").write_text(
        f'"""Public tests of {assignment.name}: your code on the public cases, against the\n'
        'reference\'s results stored in tests/expected/. The grader adds hidden cases."""\n'
        "import pytest\n\n"
        "from minitorch_cnn.assignments.public import case_names, check_case\n\n\n"
        '@pytest.mark.parametrize("task, case", case_names(), ids=lambda v: str(v))\n'
        "def test_public_case(task, case):\n"
        "    check_case(task, case)\n")


def _docs(assignment, chosen, out):
    """Copy the pages that derive the tasks, except those that quote a blanked task's
    solution or describe its answer (``redact``): those stay in the library's repository."""
    tasks = [assignment.task(t) for t in chosen]
    answers = {" ".join(line.split()) for t in tasks for line in _solution_code(t.name)}
    for page in sorted({t.doc for t in tasks if t.doc and not t.redact}):
        src = REPO / page
        if src.exists():
            text = " ".join(src.read_text().split())
            if any(a in text for a in answers):
                continue
            (out / page).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out / page)


def _solution_code(task):
    """The code lines (at least 16 characters) of a task's regions in the reference."""
    for rel, source in marked_files().items():
        lines = source.splitlines()
        for r in markers.find_regions(source, path=rel):
            if r.task == task:
                yield from (c for c in (line.split("#")[0].strip() for line in
                                        lines[r.begin + 1:r.end]) if len(c) >= 16)


def _where(index, task):
    return ", ".join(f"`{q}` in `minitorch_cnn/{student_path(rel)}`" for rel, q in index.get(task, []))


def _readme(assignment, chosen, index, solution):
    rows = "\n".join(f"| {t.title} | {t.points:g} | `{t.name}` | {_where(index, t.name)} |"
                     for t in (assignment.task(n) for n in chosen))
    questions = "\n\n".join(f"### {t.title} ({t.points:g} points)\n\n{t.question}\n\n"
                            f"Where: {_where(index, t.name)}." +
                            (f" Derivation: `{t.doc}`." if t.doc else "")
                            for t in (assignment.task(n) for n in chosen))
    kind = "the instructor's copy (solutions in place, markers kept)" if solution else \
        "a student copy"
    total = sum(assignment.task(n).points for n in chosen if not assignment.task(n).extra)
    intro = textwrap.fill(f"This folder is {kind} of the `{assignment.name}` assignment of "
                          f"minitorch_cnn ({assignment.summary}). It is a runnable copy of "
                          + ("the whole package; the parts students write are marked in the "
                             "source with" if solution else
                             "the package's teaching path (no fast path: the kernels run as "
                             "their NumPy twins); the parts you write are marked in the source "
                             "with"), 78)
    return f"""# {assignment.title}

{intro}

```
### BEGIN TASK <name>
raise NotImplementedError(...)     <- replace this by your code
### END TASK <name>
```

Keep the two marker lines: the grader reads your code between them (where a
task's code is given with blanks, replace each `___` by its value). Each task
is graded on its own, with the reference for everything else, so a mistake in
one layer costs that task's points only.

| task | points | name | where |
| --- | --- | --- | --- |
{rows}
| **total** | **{total:g}** | | |

## Questions

{questions}

## Commands

```bash
python -m pytest tests            # the public tests: your code against the reference's results
jupyter notebook walkthrough.ipynb   # the walkthrough (or run walkthrough.py as a script)
```

The public tests run the kernels' NumPy twins, as the grader does. The
instructor grades with `minitorch-cnn assignment grade <this folder>`, which
adds hidden cases (other shapes, strides and seeds) to the public ones and
writes `report.md` and `results.json` here.
"""


def _walkthrough(assignment, chosen, index):
    cells = [f"""# %% [markdown]
# # {assignment.title}
#
# {assignment.summary[0].upper() + assignment.summary[1:]}.
#
# Each task is a region of the package between `### BEGIN TASK <name>` and
# `### END TASK <name>`. Write it there, then run the task's cell below: it
# runs the public cases against the reference's results and says what is
# wrong, with a hint. The graded cells carry nbgrader metadata.

# %%
import sys
from pathlib import Path

ROOT = Path.cwd() if (Path.cwd() / "minitorch_cnn").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))
from minitorch_cnn.assignments.public import check  # noqa: E402
"""]
    for n in chosen:
        t = assignment.task(n)
        meta = json.dumps({"grade": True, "grade_id": t.name, "locked": True, "points": t.points,
                           "schema_version": 3, "solution": False, "task": False})
        cells.append(f"""# %% [markdown]
# ## {t.title} ({t.points:g} points)
#
# {t.question}
#
# Where: {_where(index, t.name)}.{f" Derivation: `{t.doc}`." if t.doc else ""}

# %% nbgrader={meta}
check("{t.name}")
""")
    return "# ---\n# jupyter:\n#   jupytext:\n#     formats: py:percent\n# ---\n\n" + "\n".join(cells)
