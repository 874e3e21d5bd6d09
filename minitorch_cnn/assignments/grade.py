"""``assignment grade``: every task in isolation, in a process of its own, with a time limit.

For each task, a child process computes the reference's results, installs
the student's code for that task only (:func:`tasks.install`), runs the same
cases and compares. A student's exception, wrong shape, infinite loop or
crash costs that task's points only. The grader exits non-zero only when it
cannot grade (no manifest, an unknown assignment, the reference failing its
own cases).
"""
import contextlib
import hashlib
import io
import json
import multiprocessing
import re
import textwrap
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import get_assignment, public
from .tasks import Check, install, marked_files, region_index, run_checks, score


class GradingError(RuntimeError):
    """The grader, not the student, failed."""


@dataclass
class TaskResult:
    name: str
    title: str
    points: float
    score: float
    checks: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def first_failure(self):
        return next((c for c in self.checks if not c.passed), None)


def _child(task_name, assignment, student_pkg, key, conn):
    out = io.StringIO()
    try:
        task = get_assignment(assignment).task(task_name)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                expected = _expected(task, key)
            except Exception:  # noqa: BLE001
                conn.send(("error", f"the reference failed its own cases:\n{traceback.format_exc()}"))
                return
            checks, notes = run_checks(task, key=key, expected=expected,
                                       installer=lambda: install(task, student_pkg))
        printed = out.getvalue()
        if printed.strip():
            notes.append("your code printed: " + printed.strip()[-300:])
        conn.send(("ok", ([asdict(c) for c in checks], notes)))
    except Exception:  # noqa: BLE001
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _expected(task, key):
    from .. import kernels
    from .tasks import _seed
    previous = kernels.set_backend(task.backend)
    try:
        ref = task.mod()
        out = {}
        for c in task.all_cases(key):
            _seed(c)
            out[c.name] = task.expected(c, ref)
        return out
    finally:
        kernels.set_backend(previous)


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def grade_task(task, assignment, student_pkg, key=None, timeout=60.0):
    """Grade one task in a child process; a TaskResult (GradingError if the grader fails)."""
    ctx = _context()
    parent, child = ctx.Pipe(duplex=False)
    t0 = time.perf_counter()
    proc = ctx.Process(target=_child, args=(task.name, assignment, str(student_pkg), key, child),
                       daemon=True)
    proc.start()
    child.close()
    message = None
    if parent.poll(timeout):
        try:
            message = parent.recv()
        except EOFError:
            message = None
    proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join()
    seconds = time.perf_counter() - t0
    if message is None:
        why = (f"timed out after {timeout:g} s (an infinite loop, or far too slow?)"
               if seconds >= timeout else f"the grading process died (exit code {proc.exitcode})")
        cases = task.all_cases(key)
        checks = [Check(c.name, "everything", c.weight, False, why, c.hidden) for c in cases]
        return TaskResult(task.name, task.title, task.points, 0.0, checks, [why], seconds)
    status, payload = message
    if status == "error":
        raise GradingError(f"task {task.name}: {payload}")
    checks = [Check(**c) for c in payload[0]]
    return TaskResult(task.name, task.title, task.points, score(task, checks), checks,
                      payload[1], seconds)


@dataclass
class Report:
    assignment: str
    title: str
    results: list
    notes: list

    @property
    def score(self):
        return round(sum(r.score for r in self.results), 2)

    @property
    def points(self):
        return sum(r.points for r in self.results)


def grade(folder, key=None, tasks=None, all_tasks=False, timeout=60.0):
    """Grade the copy in ``folder``; a Report."""
    folder = Path(folder)
    try:
        manifest = public.manifest(folder)
    except (FileNotFoundError, json.JSONDecodeError) as e:
        raise GradingError(str(e)) from None
    try:
        assignment = get_assignment(manifest["assignment"])
    except KeyError as e:
        raise GradingError(str(e)) from None
    names = [t.name for t in assignment.tasks] if all_tasks else list(manifest["tasks"])
    if tasks:
        names = [n for n in names if n in tasks]
    notes = _reference_notes(manifest)
    region_index()                                       # fail here, not in every child
    results = [grade_task(assignment.task(n), assignment.name, folder / "minitorch_cnn", key,
                          timeout) for n in names]
    return Report(assignment.name, assignment.title, results, notes)


def _reference_notes(manifest):
    now = {rel: hashlib.sha256(src.encode()).hexdigest() for rel, src in marked_files().items()}
    changed = sorted(rel for rel, h in manifest.get("reference", {}).items() if now.get(rel) != h)
    if changed:
        return ["the reference changed since this copy was made (" + ", ".join(changed) +
                "); the student's code is graded against today's reference"]
    return []


# --------------------------------------------------------------------- output
def _hint(message):
    m = re.search(r"\(hint: (.*)\)\s*$", message or "")
    return m.group(1) if m else ""


def _problem(message):
    return re.sub(r"\s*\(hint: .*\)\s*$", "", message or "")


def _clip(text, width):
    return text if len(text) <= width else text[:width - 1] + "…"


def table(report, width=96):
    """The printed table: task, points, score, the first failing check and its hint."""
    rows = [("task", "points", "score", "first failing check / hint")]
    for r in report.results:
        f = r.first_failure
        what = "" if f is None else _clip(f"{f.name}: {_problem(f.message)}", width)
        rows.append((r.name, f"{r.points:g}", f"{r.score:g}", what))
        if f is not None and _hint(f.message):
            for k, line in enumerate(textwrap.wrap(_hint(f.message), width - 6)):
                rows.append(("", "", "", ("hint: " if k == 0 else "      ") + line))
    rows.append(("total", f"{report.points:g}", f"{report.score:g}", ""))
    w = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{w[0]}}  {b:>{w[1]}}  {c:>{w[2]}}  {d}".rstrip() for a, b, c, d in rows]
    rule = "-" * max(len(line) for line in lines)
    return "\n".join([lines[0], rule] + lines[1:-1] + [rule, lines[-1]])


def markdown(report):
    out = [f"# Grade report: {report.title} (`{report.assignment}`)", "",
           f"**Total: {report.score:g} / {report.points:g}**", ""]
    out += [f"> {n}" for n in report.notes] + ([""] if report.notes else [])
    out += ["| task | points | score | first failing check | hint |", "| --- | --- | --- | --- | --- |"]
    for r in report.results:
        f = r.first_failure
        esc = (lambda s: s.replace("|", "\\|"))
        out.append(f"| {r.name} | {r.points:g} | {r.score:g} | "
                   f"{esc(f'{f.name}: {_problem(f.message)}') if f else ''} | "
                   f"{esc(_hint(f.message)) if f else ''} |")
    for r in report.results:
        out += ["", f"## {r.title} (`{r.name}`): {r.score:g} / {r.points:g}", ""]
        out += [f"- note: {n}" for n in r.notes]
        for c in r.checks:
            mark = "pass" if c.passed else "FAIL"
            out.append(f"- {mark}: {c.name}" + ("" if c.passed else f" -- {c.message}"))
    return "\n".join(out) + "\n"


def gradescope(report):
    """Gradescope's results.json: one test per task (and one per task's hidden cases)."""
    tests = []
    for r in report.results:
        for hidden in (False, True):
            part = [c for c in r.checks if c.hidden == hidden]
            if not part:
                continue
            total = sum(c.weight for c in r.checks) or 1.0
            share = sum(c.weight for c in part) / total
            got = sum(c.weight for c in part if c.passed) / total
            lines = [f"{'pass' if c.passed else 'FAIL'}: {c.name}" + ("" if c.passed else
                                                                      f" -- {c.message}")
                     for c in part] + [f"note: {n}" for n in r.notes]
            tests.append({"name": r.title + (" (hidden cases)" if hidden else ""),
                          "score": round(r.points * got, 2),
                          "max_score": round(r.points * share, 2),
                          "output": "\n".join(lines),
                          "visibility": "after_due_date" if hidden else "visible"})
    return {"score": report.score, "tests": tests, "visibility": "visible",
            "stdout_visibility": "hidden"}


def write(report, folder, json_path=None):
    folder = Path(folder)
    (folder / "report.md").write_text(markdown(report))
    path = Path(json_path) if json_path else folder / "results.json"
    path.write_text(json.dumps(gradescope(report), indent=1) + "\n")
    return path
