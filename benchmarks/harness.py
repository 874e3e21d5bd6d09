"""What every benchmark here shares: worker processes, paired rounds, the quiet-machine check,
and the machine, BLAS and sgemm figures a timing is quoted with.

* **Worker processes.** PyTorch and Numba interfere inside one process, and old and new
  code must not share one, so each side runs in its own process: :class:`Worker` starts
  ``python SCRIPT --worker ...`` and sends it one JSON command a line; the script's
  worker calls :func:`serve` with an object whose methods are the commands
  (``side.step(rng=..., reps=3)``) and answers each with one JSON line.
* **Paired rounds.** The parent measures the sides in rounds, rotating (and every other
  round reversing) their order (:func:`round_order`), so drift in the machine's speed
  hits them all; a ratio is the median of each round's ratio (:func:`paired_ratio`).
* **A shared machine.** Around a measurement, :func:`quiet` reads /proc for the CPU time
  that *other* processes used meanwhile and repeats the measurement while they used more
  than :data:`QUIET_CORES` cores, keeping the quietest attempt; the report says how many
  stayed noisy (:func:`noise_line`).
* **The figures a time needs.** :func:`header` prints the date, the processor (with its
  family and model), the load, the BLAS settings (:func:`blas_line`) and the setup;
  :func:`sgemm_gflops` measures numpy's float32 matrix multiply in the same run.
* **Both OpenBLAS settings.** Every script is run twice, once as the machine is and once
  with the OpenBLAS variables changed on the command line (the scripts' docstrings show
  both); the harness never sets them itself, it reports which setting a run had.
"""
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
             "OPENBLAS_THREAD_TIMEOUT")
QUIET_CORES = 0.1    # a measurement counts as quiet when other processes used less than this


# ================================================================== the machine
def cpu_info():
    """'AMD EPYC ... (family 25 model 1, avx512f=False)' from /proc/cpuinfo."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return (f"{fields.get('model name', platform.processor() or 'unknown CPU')} "
            f"(family {fields.get('cpu family', '?')} model {fields.get('model', '?')}, "
            f"avx512f={'avx512f' in fields.get('flags', '').split()})")


def load():
    """The 1, 5 and 15 minute load averages, as text."""
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"


def blas_line():
    """The OpenBLAS and threading variables of this run, and which documented setting it is."""
    values = "  ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in BLAS_VARS)
    set_ = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if os.environ.get(k)]
    return values + ("  (OpenBLAS's own kernel choice)" if not set_ else
                     f"  (set on the command line: {', '.join(set_)})")


def header(title, setup):
    """Print a run's first lines: what, when, on what machine, with which BLAS settings."""
    print(f"# {title}")
    print(f"date     {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"machine  {cpu_info()} | {os.cpu_count()} logical CPUs | "
          f"{platform.system()} {platform.release()} | Python {platform.python_version()}")
    print(f"load     {load()} at start (the machine may be shared: ratios come from "
          "paired rounds)")
    print(f"env      {blas_line()}")
    print(f"setup    {setup}")


def sgemm_gflops(m=400, k=1024, n=1024, reps=5):
    """numpy's float32 matrix multiply (m x k) @ (k x n) in GFLOP/s, median of ``reps``."""
    import numpy as np
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    a @ b
    return 2 * m * k * n / statistics.median(times(lambda: a @ b, reps)) / 1e9


def worker_env():
    """The environment of a worker: ours, with this checkout first on PYTHONPATH."""
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


# ======================================================================= timing
def times(fn, reps, clock=time.perf_counter):
    """[seconds of each of ``reps`` calls of fn()] by ``clock``."""
    out = []
    for _ in range(reps):
        t = clock()
        fn()
        out.append(clock() - t)
    return out


def median(xs):
    return statistics.median(xs)


def chunk_medians(xs, n):
    """Medians of consecutive chunks of ``n``: one per round when each round adds ``n``."""
    return [median(xs[i:i + n]) for i in range(0, len(xs), n)]


def round_order(sides, r):
    """The order of the sides in round ``r``: rotated by r, and reversed every other cycle
    of rotations (reversing odd rounds would undo the rotation for two sides)."""
    k = r % len(sides)
    order = list(sides[k:]) + list(sides[:k])
    return order[::-1] if (r // len(sides)) % 2 else order


def paired_ratio(a_rounds, b_rounds):
    """(median, per-round list) of a / b, each round's a and b measured seconds apart."""
    per_round = [a / b for a, b in zip(a_rounds, b_rounds)]
    return median(per_round), per_round


# ======================================================== the quiet-machine check
def _machine_busy():
    """Seconds of CPU time used by everything on the machine so far (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = list(map(int, f.readline().split()[1:]))
    except OSError:
        return None
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """CPU seconds used by a process, all its threads (from /proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu():
    """CPU seconds of this process and its finished children."""
    import resource
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def quiet(fn, retries, log, own_cpu=_own_cpu):
    """fn(), repeated (up to ``retries`` more times) while processes other than ours used
    more than QUIET_CORES of the machine meanwhile; returns the quietest attempt's result
    and appends to ``log`` how many cores the others used during it. ``own_cpu()`` gives
    the CPU seconds of the processes being measured."""
    best = None
    for _ in range(retries + 1):
        b0, s0, t = _machine_busy(), own_cpu(), time.perf_counter()
        out = fn()
        b1, s1, wall = _machine_busy(), own_cpu(), time.perf_counter() - t
        if None in (b0, s0, b1, s1):          # no /proc: nothing to check
            log.append(0.0)
            return out
        share = max(0.0, ((b1 - b0) - (s1 - s0)) / wall)  # other processes' cores, on average
        if best is None or share < best[0]:
            best = (share, out)
        if share <= QUIET_CORES:
            break
    log.append(best[0])
    return best[1]


def noise_line(log, retries):
    """How busy the machine was during a run's measurements, in one line."""
    noisy = sum(share > QUIET_CORES for share in log)
    return (f"machine sharing: {len(log)} measurements, {noisy} of them with other processes "
            f"using > {QUIET_CORES} cores even after {retries} retries (worst "
            f"{max(log, default=0):.2f} cores, median {median(log) if log else 0:.2f})")


# ============================================================== worker processes
class Worker:
    """A side in its own process: ``python script --worker ARGS``, JSON commands in on
    stdin, one JSON answer a line out (see :func:`serve`)."""

    def __init__(self, script, args, name, env=None, cwd=ROOT):
        self.name = name
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(script), "--worker", *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env or worker_env(), cwd=cwd)

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} worker died (command {cmd})")
        return json.loads(line)

    def ask_quiet(self, log, retries, **cmd):
        """ask(), repeated while other processes kept the machine busy (see :func:`quiet`)."""
        def ours():  # this parent and the worker being measured
            a, b = proc_cpu(self.proc.pid), proc_cpu(os.getpid())
            return None if a is None or b is None else a + b
        return quiet(lambda: self.ask(**cmd), retries, log, ours)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=120)


def serve(side, seed=0):
    """The worker's loop: each line ``{"op": name, ...}`` runs ``side.name(rng=rng, ...)``
    and its JSON answer is written back, until stdin closes."""
    import numpy as np
    rng = np.random.default_rng(seed)
    for line in sys.stdin:
        cmd = json.loads(line)
        out = getattr(side, cmd.pop("op"))(rng=rng, **cmd)
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
