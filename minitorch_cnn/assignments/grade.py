"""``assignment grade``: every task in isolation, in a confined process of its own.

For each task the grader (this process, which never runs a student's code)

1. assembles the package the task is graded in: the teaching path with the
   reference's code (:func:`package.base`, once), under the files that hold
   the student's code for that task (:func:`package.assemble`);
2. has :mod:`runner` fork a confined process (limits on wall time, CPU time
   and memory; Landlock where Linux has it) that runs the cases' inputs
   through it and writes only the outputs, as JSON and ``.npz`` (read
   without pickle);
3. computes the reference's results itself (:func:`tasks.reference_results`),
   meanwhile, and compares, scores and writes every output after the
   processes have ended.

A student's exception, wrong shape, infinite loop, memory bomb or crash
costs that task's points only. The grader exits non-zero only when it cannot
grade (no manifest, an unknown assignment, the reference failing its own
cases). docs/teaching.md says what this does and does not guarantee.
"""
import hashlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import get_assignment, markers, package, public, runner
from .tasks import marked_files, reference_results, region_index, score

MAX_OUTPUT = 512 << 20          # bytes of outputs read back from one task's process


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
    extra: bool = False

    @property
    def first_failure(self):
        return next((c for c in self.checks if not c.passed), None)


@dataclass
class Report:
    assignment: str
    title: str
    results: list
    notes: list

    @property
    def score(self):
        return round(sum(r.score for r in self.results if not r.extra), 2)

    @property
    def points(self):
        return sum(r.points for r in self.results if not r.extra)


def grade(folder, key=None, tasks=None, all_tasks=False, timeout=120.0, memory_mb=4096,
          jobs=None):
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
    landlock = runner.landlock_abi() >= 1
    if not landlock:
        notes.append("no Landlock on this machine: the students' code could read this "
                     "machine's files while it ran (grade in a container or as another user)")
    work = Path(tempfile.mkdtemp(prefix="minitorch-grade-"))
    try:
        return Report(assignment.name, assignment.title,
                      _grade_all(assignment, names, folder / "minitorch_cnn", key, work,
                                 dict(timeout=float(timeout), memory_mb=int(memory_mb),
                                      jobs=jobs or max(1, min(4, os.cpu_count() or 1)),
                                      landlock=landlock)), notes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _grade_all(assignment, names, student_pkg, key, work, opts):
    index = region_index()
    base = work / "base" / "minitorch_cnn"
    jobs = [_Job(assignment.task(n), work / n, assignment.task(n).all_cases(key)) for n in names]
    pending = []
    pool = _Pool(work, opts)                   # starts the runner (it imports NumPy) meanwhile
    try:
        package.base(base, assignment, index)
        pool.send("compile " + json.dumps([str(base), package.NOT_IMPORTED]))
        pool.base = str(base)
        for job in jobs:                       # the reference's results, while children run
            if not pool.compiled:
                pool.pump([])
                if pool.compiled:              # then every task's package, and go
                    pending = _assemble(jobs, assignment, student_pkg, index, base, pool)
            pool.pump(pending)
            try:
                job.expected = reference_results(job.task, cases=job.cases)
            except Exception as e:  # noqa: BLE001
                raise GradingError(f"task {job.task.name}: the reference failed its own "
                                   f"cases: {type(e).__name__}: {e}") from e
        while not pool.compiled:
            pool.pump([], wait=0.05)
            if pool.compiled:
                pending = _assemble(jobs, assignment, student_pkg, index, base, pool)
        while pending or pool.running or pool.started:
            pool.pump(pending, wait=0.05)
    finally:
        pool.close()
    return [_result(job, opts) for job in jobs]


def _assemble(jobs, assignment, student_pkg, index, base, pool):
    """Each task's package and inputs, each sent to run as soon as it is ready; returns
    the jobs waiting for a free slot."""
    ready = []
    for job in jobs:
        try:
            job.origins, job.notes = package.assemble(
                job.task, student_pkg, job.folder / "pkg" / "minitorch_cnn", index)
        except (markers.MarkerError, SyntaxError, OSError) as e:
            job.failed = f"could not read your code: {e}"
        (job.folder / "out").mkdir(parents=True, exist_ok=True)
        (job.folder / "job.json").write_text(json.dumps({
            "assignment": assignment.name, "task": job.task.name, "base": str(base),
            "cases": [{"name": c.name, "params": repr(c.params)} for c in job.cases]}))
        if job.failed is None:
            ready.append(job)
            pool.pump(ready)
    return ready


class _Job:
    def __init__(self, task, folder, cases):
        self.task, self.folder, self.cases = task, folder, cases
        self.origins, self.notes, self.failed = {}, [], None
        self.expected, self.status, self.seconds, self.timed_out = None, None, 0.0, False


class _Pool:
    """The runner process: sends it task folders (``jobs`` at a time), hears when each ends,
    kills a task's process group when it runs past the time limit."""

    def __init__(self, work, opts):
        links = work / "numpy-only"
        links.mkdir()
        real = [Path(np.__file__).resolve().parent]
        libs = real[0].parent / "numpy.libs"
        if libs.is_dir():
            real.append(libs)
        for r in real:
            (links / r.name).symlink_to(r, target_is_directory=True)
        self.opts, self.running, self.started, self.compiled = opts, {}, {}, False
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", str(Path(runner.__file__).resolve())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=work, text=True, start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")})
        self.send(json.dumps({"numpy_dir": str(links), "numpy_real": [str(r) for r in real],
                               "memory_mb": opts["memory_mb"], "landlock": opts["landlock"],
                               "cpu_s": int(opts["timeout"]) + 1}))
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = ""

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def pump(self, pending, wait=0.0):
        while pending and len(self.running) + len(self.started) < self.opts["jobs"]:
            job = pending.pop(0)
            self.started[str(job.folder)] = job
            job.t0 = time.perf_counter()
            self.send(str(job.folder))
        if self.sel.select(wait):
            chunk = os.read(self.proc.stdout.fileno(), 65536).decode()
            if not chunk:
                raise GradingError("the grading runner ended unexpectedly")
            self.buffer += chunk
            *lines, self.buffer = self.buffer.split("\n")
            for line in lines:
                what, *rest = line.split()
                if what == "compiled":
                    self.compiled = True
                elif what == "started":
                    job = self.started.pop(rest[0])
                    self.running[int(rest[1])] = job
                elif what == "done" and int(rest[0]) in self.running:
                    job = self.running.pop(int(rest[0]))
                    job.status, job.seconds = int(rest[1]), time.perf_counter() - job.t0
                    _kill_group(int(rest[0]))    # what it started goes with it
        now = time.perf_counter()
        for pid, job in list(self.running.items()):
            if now - job.t0 > self.opts["timeout"] and not job.timed_out:
                job.timed_out = True
                _kill_group(pid)

    def close(self):
        for pid in self.running:
            _kill_group(pid)
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _result(job, opts):
    task, checks = job.task, []
    outputs, why = ({}, job.failed) if job.failed else _outputs(job, opts)
    for c in job.cases:
        want = job.expected[c.name]
        case = outputs.get(c.name)
        if why or case is None:
            checks += public.checks_of(c, want, error=why or "no result (the process ended "
                                                             "before this case)")
        elif "error" in case:
            checks += public.checks_of(c, want, error=str(case["error"])[:400] +
                                       _where(case.get("frames"), job))
        else:
            checks += public.checks_of(c, want, got=case["results"])
    notes = list(job.notes)
    printed = _tail(job.folder / "out" / "stdout.txt") + _tail(job.folder / "out" / "stderr.txt")
    if printed.strip():
        notes.append("your code printed: " + printed.strip()[-300:])
    return TaskResult(task.name, task.title, task.points, score(task, checks), checks, notes,
                      job.seconds, task.extra)


def _outputs(job, opts):
    """{case: {"results": {...}} | {"error": ...}} read back, or ({}, why nothing came)."""
    out = job.folder / "out"
    if job.timed_out:
        return {}, f"timed out after {opts['timeout']:g} s (an infinite loop, or far too slow?)"
    try:
        meta = out / "outputs.json"
        if not meta.exists() or meta.stat().st_size > MAX_OUTPUT:
            raise ValueError("no outputs")
        cases = json.loads(meta.read_text())["cases"]
        with zipfile.ZipFile(out / "outputs.npz") as z:
            if sum(i.file_size for i in z.infolist()) > MAX_OUTPUT:
                raise ValueError("outputs too large")
        with np.load(out / "outputs.npz", allow_pickle=False) as arrays:
            for case in cases.values():
                for r, spec in case.get("results", {}).items():
                    case["results"][r] = _value(spec, arrays)
        return cases, None
    except Exception:  # noqa: BLE001 -- whatever the student's process left is not trusted
        status = job.status or 0
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        why = {signal.SIGXCPU: "it ran out of CPU time", signal.SIGKILL: "it was killed (memory?)",
               signal.SIGSEGV: "it crashed (segmentation fault)"}.get(sig, "")
        return {}, ("the grading process ended without results" +
                    (f": {why}" if why else f" (status {status})"))


def _value(spec, arrays):
    if spec["kind"] == "json":
        return spec["value"]
    a = arrays[spec["key"]]
    if a.dtype.kind not in "biuf":
        raise ValueError("not an array of numbers")
    return a


def _where(frames, job):
    """' (at file:line)': the deepest frame in the student's code."""
    best = ""
    for fname, line in frames or []:
        rel = str(fname).split("/pkg/minitorch_cnn/", 1)[-1]
        origin = job.origins.get(rel, {}).get(line) if isinstance(line, int) else None
        if origin:
            best = f" (at {origin[0]}:{origin[1]})"
    return best


def _tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _reference_notes(manifest):
    now = {rel: hashlib.sha256(src.encode()).hexdigest() for rel, src in marked_files().items()}
    changed = sorted(rel for rel, h in manifest.get("reference", {}).items() if now.get(rel) != h)
    if changed:
        return ["the reference changed since this copy was made (" + ", ".join(changed) +
                "); the student's code is graded against today's reference"]
    return []


__all__ = ["GradingError", "Report", "TaskResult", "grade"]
