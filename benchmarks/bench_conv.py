"""Every distinct kxk convolution of the seed model and FastNet, per algorithm, against PyTorch.

    python benchmarks/bench_conv.py                          # as the machine is
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv.py
    OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512 python benchmarks/bench_conv.py
    python benchmarks/bench_conv.py --quick --model seed     # one model, fewer repetitions
    python benchmarks/bench_conv.py --smoke                  # seconds: shows it runs

For each shape (seed model: batch 100; FastNet: batch 512; 32x32 images,
float32, 2 threads), the forward + backward time of every fast-path
convolution algorithm that applies (``minitorch_cnn/fast/algorithms.py``),
of PyTorch 2.x CPU (``F.conv2d``), their ratios, the GFLOP/s both reach and
numpy's float32 GEMM GFLOP/s measured in the same run, and which algorithm
``choose`` picks. GFLOP/s count the definition's multiply-adds (x2) for every
column, so Winograd's and the dense form's are effective rates: they do fewer
multiplies for the same convolution. No input gradient for a stem (its input is the data),
as in training.

Each framework runs in its own worker process, measurements alternate between
them, and each is repeated while other processes keep the machine busy
(benchmarks/harness.py).
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from harness import Worker, header, noise_line, serve  # noqa: E402

BATCH = {"seed": 100, "fastnet": 512}
COLUMNS = ("im2col+gemm", "winograd-2x2", "winograd-4x4", "dense-small-map")  # table order
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def best_time(fn, reps, clock):
    """The shortest of `reps` runs of fn(), in seconds of the given clock."""
    now, best = CLOCKS[clock], float("inf")
    for _ in range(reps):
        t = now()
        fn()
        best = min(best, now() - t)
    return best


GEMM = (2048, 2048, 2048)


def conv_macs(key):
    """Multiply-adds of forward + dW (+ dX when the input needs a gradient)."""
    n, cin, cout, k, s, p, h = key
    oh = (h + 2 * p - k) // s + 1
    return n * oh * oh * cin * cout * k * k * (2 if cin == 3 else 3)


# ======================================================================= workers
class MinitorchSide:
    def __init__(self, threads, clock="wall"):
        self.clock = clock
        sys.path.insert(0, ROOT)
        from minitorch_cnn.fast import algorithms  # first: its threading policy precedes NumPy

        import numpy as np
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads, user_api="blas")
        self.np, self.algorithms = np, algorithms

    def info(self, rng):
        import numba
        from threadpoolctl import threadpool_info
        return dict(numpy=self.np.__version__, numba=numba.__version__,
                    blas=[f"{p['internal_api']} {p.get('version')} {p.get('architecture')} "
                          f"threads={p['num_threads']}" for p in threadpool_info()])

    def shapes(self, rng, model, batch):
        """[(N, cin, cout, k, s, p, H)] of the model's kxk convolutions, in forward order."""
        if model == "seed":
            from seed_model import conv_shapes
            return [(batch, cin, cout, k, s, p, h)
                    for _, cin, cout, k, s, p, h in conv_shapes(batch) if k > 1]
        from minitorch_cnn import nn
        from minitorch_cnn.models import fastnet
        seen, forward = [], nn.Conv2d.forward

        def record(conv, x):
            seen.append((batch, conv.in_channels, conv.out_channels,
                         conv.kernel_size[0], conv.stride[0], conv.padding[0], x.shape[1]))
            return forward(conv, x)
        nn.Conv2d.forward = record
        try:
            fastnet(dtype=self.np.float32)(self.np.zeros((1, 32, 32, 3), self.np.float32))
        finally:
            nn.Conv2d.forward = forward
        return [key for key in seen if key[3] > 1]

    def gemm(self, rng, reps):
        m, k, n = GEMM
        a = rng.standard_normal((m, k), dtype=self.np.float32)
        b = rng.standard_normal((k, n), dtype=self.np.float32)
        a @ b
        return best_time(lambda: a @ b, reps, self.clock)

    def conv(self, rng, key, algo, reps):
        np = self.np
        n, cin, cout, k, s, p, h = key
        cls = self.algorithms.ALGORITHMS[algo]
        x = rng.standard_normal((n, h, h, cin), dtype=np.float32)
        w = (rng.standard_normal((cout, cin, k, k)) / (cin * k * k) ** 0.5).astype(np.float32)
        alg = cls(x.shape, w.shape, (s, s), (p, p))
        y, saved = alg.forward(x, w)
        g = rng.standard_normal(y.shape, dtype=np.float32)

        def step():
            _, saved = alg.forward(x, w)
            alg.backward(g, saved, w, cin != 3)
        step()
        return best_time(step, reps, self.clock)

    def applicable(self, rng, key):
        n, cin, cout, k, s, p, h = key
        return [name for name, cls in self.algorithms.ALGORITHMS.items()
                if cls.applies((n, h, h, cin), (cout, cin, k, k), (s, s), (p, p))]

    def choose(self, rng, key):
        n, cin, cout, k, s, p, h = key
        return self.algorithms.choose((n, h, h, cin), (cout, cin, k, k), s, p).name


class TorchSide:
    def __init__(self, threads, clock="wall"):
        self.clock = clock
        import torch
        torch.set_num_threads(threads)
        self.torch = torch

    def info(self, rng):
        return dict(torch=self.torch.__version__, threads=self.torch.get_num_threads())

    def conv(self, rng, key, algo, reps):
        torch = self.torch
        n, cin, cout, k, s, p, h = key
        x = torch.from_numpy(rng.standard_normal((n, cin, h, h), dtype="float32"))
        x.requires_grad_(cin != 3)
        w = torch.from_numpy(rng.standard_normal((cout, cin, k, k), dtype="float32"))
        w.requires_grad_(True)
        g = torch.from_numpy(rng.standard_normal(
            (n, cout, (h + 2 * p - k) // s + 1, (h + 2 * p - k) // s + 1), dtype="float32"))

        def step():
            x.grad = w.grad = None
            torch.nn.functional.conv2d(x, w, None, s, p).backward(g)
        step()
        return best_time(step, reps, self.clock)


# ======================================================================== parent
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", choices=["minitorch", "torch"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall: elapsed time; cpu: CPU time of the worker process (with "
                         "--threads 1, the work done, whatever else runs on the machine)")
    ap.add_argument("--model", choices=["seed", "fastnet", "both"], default="both")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per measurement (best kept)")
    ap.add_argument("--retries", type=int, default=2,
                    help="repeat a measurement up to this many times while the machine is busy")
    ap.add_argument("--quick", action="store_true", help="2 repetitions, 1 retry")
    ap.add_argument("--batch", type=int, help="images per batch (default: seed 100, FastNet 512)")
    ap.add_argument("--smoke", action="store_true",
                    help="the seed model at batch 2, one repetition, no retries: that it runs")
    args = ap.parse_args()
    if args.worker:
        return serve((MinitorchSide if args.worker == "minitorch" else TorchSide)(
            args.threads, args.clock))
    if args.quick:
        args.reps, args.retries = 2, 1
    if args.smoke:
        args.model, args.batch, args.reps, args.retries = "seed", 2, 1, 0
    flags = ["--threads", str(args.threads), "--clock", args.clock]
    mt, pt = (Worker(__file__, [kind] + flags, kind) for kind in ("minitorch", "torch"))
    started = time.time()
    header("kxk convolutions, forward + backward: fast-path algorithms vs PyTorch CPU",
           f"{args.threads} threads, {args.clock} clock, best of {args.reps} runs")
    info_m, info_t = mt.ask(op="info"), pt.ask(op="info")
    print(f"libs     numpy {info_m['numpy']}, numba {info_m['numba']}, "
          f"{'; '.join(info_m['blas'])} | torch {info_t['torch']} ({info_t['threads']} threads)")
    gemm_s = mt.ask(op="gemm", reps=args.reps + 2)
    sgemm = 2 * GEMM[0] * GEMM[1] * GEMM[2] / gemm_s / 1e9
    print(f"sgemm    numpy {GEMM[0]}^3 float32: {sgemm:.1f} GFLOP/s")
    log = []
    models = ["seed", "fastnet"] if args.model == "both" else [args.model]
    for model in models:
        keys = []
        batch = args.batch or BATCH[model]
        for key in map(tuple, mt.ask(op="shapes", model=model, batch=batch)):
            if key not in keys:
                keys.append(key)
        print(f"\n## {model}, batch {batch}: ms (forward + backward), ratio to PyTorch, "
              "GFLOP/s")
        print(f"{'shape':28s} {'PyTorch':>14s} " + " ".join(f"{a:>20s}" for a in COLUMNS)
              + "  chosen")
        for key in keys:
            n, cin, cout, k, s, p, h = key
            algos = mt.ask(op="applicable", key=list(key))
            gflop = 2 * conv_macs(key) / 1e9
            cells = {}
            for algo in algos:
                t_t = pt.ask_quiet(log, args.retries, op="conv", key=list(key), algo="torch",
                                   reps=args.reps)
                t_m = mt.ask_quiet(log, args.retries, op="conv", key=list(key), algo=algo,
                                   reps=args.reps)
                cells.setdefault("torch", []).append(t_t)
                cells[algo] = t_m
            t_torch = min(cells["torch"])
            row = f"{cin}->{cout} {k}x{k}/s{s}p{p} @{h}x{h}"
            line = f"{row:28s} {t_torch * 1e3:7.1f} {gflop / t_torch:4.0f}GF "
            for algo in COLUMNS:
                if algo in cells:
                    t = cells[algo]
                    line += f"{t * 1e3:7.1f} {t / t_torch:5.2f}x {gflop / t:4.0f}GF "
                else:
                    line += f"{'-':>20s} "
            print(line + " " + mt.ask(op="choose", key=list(key)), flush=True)
    print("\n" + noise_line(log, args.retries) + f"; {time.time() - started:.0f} s in all")
    mt.close()
    pt.close()


if __name__ == "__main__":
    main()
