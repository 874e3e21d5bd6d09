"""The grading child: runs tasks' cases on a student's code and writes only the outputs.

``grade.py`` starts this file as ``python -I -S runner.py`` (an isolated
interpreter: no site-packages, no PYTHONPATH, no user site) with NumPy alone
on its path. It reads one JSON line of settings, imports NumPy, and then, for
each task folder the grader sends (one per line), forks a process that

1. starts a session of its own, sends its stdout/stderr to files and closes
   the pipes to the grader;
2. limits its memory (RLIMIT_AS), CPU time (RLIMIT_CPU), file size and core
   dumps, and, where Linux offers Landlock, confines itself to reading its
   task folder, the base, the standard library and NumPy and writing its ``out/``
   folder, with no network and no signals to processes outside;
3. imports the task's package (its own files, with the student's code for
   that task, over the grader's base: the reference's teaching path) and runs
   each case;
4. writes ``out/outputs.json`` and ``out/outputs.npz``: the results, as plain
   values and arrays, or the error a case raised.

This process itself never runs a student's code; it compiles the grader's
base package when asked (``compile`` line: meanwhile the grader computes the
reference's results), forks, and reports ``compiled``, ``started TASKDIR PID``
and ``done PID STATUS`` lines. The verdict is the
grader's: it reads the outputs (no pickle) and compares them with the
reference's results, which it computed itself.
"""
import ctypes
import json
import os
import resource
import sys
import sysconfig
import threading

_SYS_CREATE, _SYS_ADD, _SYS_RESTRICT = 444, 445, 446
_READ = (1 << 0) | (1 << 2) | (1 << 3)                     # execute, read file, read dir
_WRITE = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 7) | (1 << 8)   # write, remove, make dir/file


def landlock_abi():
    """The kernel's Landlock ABI version, or 0 where it has none."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return max(0, int(libc.syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))))
    except (OSError, AttributeError):
        return 0


def _landlock(rules):
    """Allow only ``rules``: [(path, "read" | "write" | "list" | "file")] -- read or write
    beneath a folder, list a folder only, read one file; True if in force."""
    abi = landlock_abi()
    if abi < 1:
        return False
    handled = (1 << 13) - 1 | ((1 << 13) if abi >= 2 else 0) | ((1 << 14) if abi >= 3 else 0)
    fields = [("fs", ctypes.c_uint64)] + ([("net", ctypes.c_uint64)] if abi >= 4 else []) + \
        ([("scoped", ctypes.c_uint64)] if abi >= 6 else [])
    attr = type("Ruleset", (ctypes.Structure,), {"_fields_": fields})()
    attr.fs = handled
    if abi >= 4:
        attr.net = 3                                        # no TCP bind or connect
    if abi >= 6:
        attr.scoped = 3                                     # no abstract sockets, no signals out

    class Beneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]

    libc = ctypes.CDLL(None, use_errno=True)
    ruleset = libc.syscall(_SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    rights = {"read": _READ, "write": _READ | _WRITE | ((1 << 14) if abi >= 3 else 0),
              "list": 1 << 3, "file": (1 << 0) | (1 << 2)}
    for path, kind in rules:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        rule = Beneath(rights[kind] & handled, fd)
        libc.syscall(_SYS_ADD, ruleset, 1, ctypes.byref(rule), ctypes.c_uint32(0))
        os.close(fd)
    if libc.prctl(38, 1, 0, 0, 0) != 0:                    # PR_SET_NO_NEW_PRIVS
        return False
    ok = libc.syscall(_SYS_RESTRICT, ruleset, ctypes.c_uint32(0)) == 0
    os.close(ruleset)
    return ok


def _stdlib():
    """The standard library's folders, without site-packages."""
    out = set()
    for key in ("stdlib", "platstdlib"):
        root = sysconfig.get_paths()[key]
        for name in os.listdir(root):
            if name not in ("site-packages", "dist-packages"):
                out.add(os.path.join(root, name))
    return sorted(out)


def _encode(value, key, arrays):
    import numpy as np
    if value is None or isinstance(value, (bool, np.bool_)):
        return {"kind": "json", "value": None if value is None else bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"kind": "json", "value": int(value)}
    if isinstance(value, str):
        return {"kind": "json", "value": value}
    if isinstance(value, (list, tuple)):
        return {"kind": "json", "value": [str(v) for v in value]}
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        return {"kind": "json", "value": [str(v) for v in np.ravel(a).tolist()]}
    arrays[key] = a.copy(order="C")
    return {"kind": "array", "key": key}


def _base_rules(base, own):
    """Landlock rules for the base: its folders may be listed and its files read, except
    the files the task's own folder replaces (the reference's code for the task) and
    their compiled copies."""
    mine = {os.path.relpath(os.path.join(d, n), own) for d, _, names in os.walk(own)
            for n in names if n.endswith(".py")}
    rules = []
    for d, _, names in os.walk(base):
        rules.append((d, "list"))
        for n in names:
            rel = os.path.relpath(os.path.join(d, n), base)
            if n.endswith(".pyc"):                       # pkg/__pycache__/x.cpython-311.pyc
                rel = os.path.join(os.path.dirname(os.path.dirname(rel)), n.split(".")[0] + ".py")
            if rel not in mine:
                rules.append((os.path.join(d, n), "file"))
    return rules


def _import_from(roots):
    """``minitorch_cnn`` is imported from ``roots``, the first holding a module winning (the
    task's own files, then the base); its ``__init__`` is not run (nothing the tasks need)."""
    import importlib.abc
    import importlib.util
    import types

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if not name.startswith("minitorch_cnn."):
                return None
            parts = name.split(".")[1:]
            for root in roots:
                where = os.path.join(root, *parts)
                if os.path.isfile(where + ".py"):
                    return importlib.util.spec_from_file_location(name, where + ".py")
                if os.path.isfile(os.path.join(where, "__init__.py")):
                    return importlib.util.spec_from_file_location(
                        name, os.path.join(where, "__init__.py"),
                        submodule_search_locations=[os.path.join(r, *parts) for r in roots])
            return None

    pkg = types.ModuleType("minitorch_cnn")
    pkg.__path__ = list(roots)
    pkg.__file__ = os.path.join(roots[-1], "__init__.py")
    sys.modules["minitorch_cnn"] = pkg
    sys.meta_path.insert(0, Finder())


def _run_task(folder, settings):
    """In the forked process: confine, import the assembled package, run, write."""
    out = os.path.join(folder, "out")
    os.setsid()
    for fd, name in ((1, "stdout.txt"), (2, "stderr.txt")):
        f = os.open(os.path.join(out, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    mem = int(settings["memory_mb"]) << 20
    cpu = int(settings["cpu_s"])
    for limit, value in ((resource.RLIMIT_AS, (mem, mem)), (resource.RLIMIT_CPU, (cpu, cpu + 1)),
                         (resource.RLIMIT_FSIZE, (256 << 20, 256 << 20)),
                         (resource.RLIMIT_CORE, (0, 0))):
        resource.setrlimit(limit, value)
    with open(os.path.join(folder, "job.json")) as f:
        job = json.load(f)
    own = os.path.join(folder, "pkg", "minitorch_cnn")
    if settings["landlock"]:
        rules = [(p, "read") for p in [folder] + _stdlib() + settings["numpy_real"]]
        rules += [(out, "write")] + _base_rules(job["base"], own)
        if not _landlock(rules):
            raise SystemExit(3)
    os.chdir(out)
    _import_from([own, job["base"]])
    from minitorch_cnn.assignments import get_assignment
    from minitorch_cnn.assignments.tasks import Case, describe_exception, frames, run_case
    import ast
    import numpy as np
    task = get_assignment(job["assignment"]).task(job["task"])
    results, arrays = {}, {}
    for ci, c in enumerate(job["cases"]):
        case = Case(c["name"])
        try:
            case.params = ast.literal_eval(c["params"])
            got = run_case(task, case, task.mod(student=True))
            results[case.name] = {"results": {
                r: _encode(v, f"c{ci}r{ri}", arrays) for ri, (r, v) in enumerate(got.items())}}
        except BaseException as e:  # noqa: BLE001 -- the student's code: any error is its case's
            results[case.name] = {"error": describe_exception(e), "frames": frames(e)[-20:]}
    np.savez(os.path.join(out, "outputs.npz"), **arrays)
    with open(os.path.join(out, "outputs.json"), "w") as f:
        json.dump({"cases": results}, f)


def main():
    settings = json.loads(sys.stdin.readline())
    sys.path[:0] = [settings["numpy_dir"]]
    import numpy  # noqa: F401 -- once, here, for every task's process
    lock = threading.Lock()
    out = sys.stdout

    def say(line):
        with lock:
            out.write(line + "\n")
            out.flush()

    def reap():
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                if stdin_done.is_set():
                    return
                stdin_done.wait(0.05)
                continue
            say(f"done {pid} {status}")

    stdin_done = threading.Event()
    waiter = threading.Thread(target=reap, daemon=True)
    waiter.start()
    for line in sys.stdin:
        folder = line.strip()
        if folder.startswith("compile "):        # the grader's base package, before any task
            import compileall
            folder, skip = json.loads(folder[len("compile "):])
            compileall.compile_dir(folder, quiet=2, rx=__import__("re").compile(skip))
            say("compiled")
            continue
        if not folder:
            continue
        with lock:                       # "started" is said before its "done" can be
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    _run_task(folder, settings)
                except BaseException:  # noqa: BLE001 -- nothing may escape into this loop
                    import traceback
                    traceback.print_exc()
                    code = 4
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except BaseException:  # noqa: BLE001
                        pass
                os._exit(code)
            out.write(f"started {folder} {pid}\n")
            out.flush()
    stdin_done.set()
    waiter.join()


if __name__ == "__main__":
    main()
