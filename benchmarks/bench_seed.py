"""minitorch_cnn against PyTorch CPU on the seed model (ResNet50_layer4), run by hand.

    python benchmarks/bench_seed.py                      # as-is
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_seed.py
    python benchmarks/bench_seed.py --rounds 3 --quick   # a faster, rougher run
    python benchmarks/bench_seed.py --smoke              # seconds: shows it runs, measures nothing

Prints, for batch 100, 32x32, float32 and 2 threads:
  1. every distinct convolution shape of the model: forward and backward times,
     minitorch_cnn / PyTorch;
  2. the whole training step (forward, loss, backward, SGD with momentum):
     minitorch_cnn / PyTorch and images per second, for minitorch_cnn on the
     fast path as the trainer runs it (``compile(model, input_grad=False)``,
     default fusions), the fast path without fusions (``fusions=()``) and the
     plain teaching layers, and minitorch_cnn's non-convolution time
     (BatchNorm, ReLU, pooling, adds, loss, SGD, zero_grad);
  3. achieved GFLOP/s of both, against a numpy float32 matrix multiply measured
     in the same run;
  4. the BLAS in use (threadpoolctl), the threading policy, the peak memory of a
     training step, and the warm start of a second process.

Each framework runs in its own worker process, measurements alternate between them
and are repeated while other processes keep the machine busy (benchmarks/harness.py).
What issue 3 asked of these figures, and what they came to: results/README.md.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from harness import (chunk_medians, header, median, noise_line, quiet, serve,  # noqa: E402
                     times, worker_env, Worker)


def distinct_convs(batch, size):
    """[(key, name of first use, count, cin, cout, k, s, p, h)] in forward order."""
    from seed_model import conv_shapes
    seen = {}
    for name, cin, cout, k, s, p, h in conv_shapes(batch, size):
        key = (cin, cout, k, s, p, h)
        if key in seen:
            seen[key][1] += 1
        else:
            seen[key] = [name, 1]
    return [(f"{k}x{k}/s{s} {cin}->{cout} @{h}x{h}", name, count, cin, cout, k, s, p, h)
            for (cin, cout, k, s, p, h), (name, count) in seen.items()]


def conv_flops(batch, size):
    """Multiply-add FLOPs (x2) of one training step: forward, dW and dX of every conv
    (no dX for the stem, whose input needs no gradient), plus the fc layer."""
    from seed_model import conv_shapes
    total = 0
    for name, cin, cout, k, s, p, h in conv_shapes(batch, size):
        oh = (h + 2 * p - k) // s + 1
        f = 2 * batch * oh * oh * cin * cout * k * k
        total += f * (2 if name == "layer1.0" else 3)
    return total + 3 * 2 * batch * 1024 * 10


# ================================================================== the two sides
class MinitorchBackend:
    def __init__(self, batch, threads):
        t0 = time.perf_counter()
        sys.path.insert(0, ROOT)
        sys.path.insert(0, HERE)
        import numpy as np
        from threadpoolctl import threadpool_info, threadpool_limits

        import minitorch_cnn
        from minitorch_cnn import fast, nn
        from minitorch_cnn.optim import SGD
        from seed_model import build_minitorch
        self.import_s = time.perf_counter() - t0
        threadpool_limits(threads, user_api="blas")
        self.np, self.nn, self.fast, self.batch = np, nn, fast, batch
        self.threadpool_info = threadpool_info()
        self.policy = dict(minitorch_cnn._threading.describe(),
                           malloc=minitorch_cnn._memory.describe())
        self.backend = minitorch_cnn.kernels.get_backend()
        self.model, self.model_source = build_minitorch()
        # fused: as the trainer runs it (the images need no gradient: the stem skips its dX,
        # PyTorch skips it too); unfused: the fast path without fusions; plain: the
        # teaching layers (train --no-compile), which compute the stem's dX
        self.nets = {"fused": fast.compile(self.model, input_grad=False),
                     "unfused": fast.compile(self.model, input_grad=False, fusions=()),
                     "plain": self.model}
        self.opt = SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss = nn.CrossEntropyLoss()

    def info(self, rng):
        import numba
        import numpy as np
        return dict(threadpool=self.threadpool_info, policy=self.policy, backend=self.backend,
                    model=self.model_source, numpy=np.__version__, numba=numba.__version__,
                    numba_layer=_numba_layer(), import_s=self.import_s)

    def gemm(self, rng, reps):
        np = self.np
        out = {}
        for m, k, n in GEMMS:
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            a @ b
            out[f"{m}x{k}x{n}"] = times(lambda: a @ b, reps)
        return out

    def conv(self, rng, key, reps):
        np, nn = self.np, self.nn
        cin, cout, k, s, p, h = key
        # the fast path's convolution; the stem's input needs no gradient
        conv = self.fast.conv.FastConv2d(nn.Conv2d(cin, cout, k, s, p), input_grad=cin != 3)
        x = rng.standard_normal((self.batch, h, h, cin), dtype=np.float32)
        y = conv.forward(x)
        g = rng.standard_normal(y.shape, dtype=np.float32)
        conv.backward(g)
        fwd, bwd = [], []
        for _ in range(reps):
            t = time.perf_counter()
            conv.forward(x)
            t1 = time.perf_counter()
            conv.backward(g)
            t2 = time.perf_counter()
            fwd.append(t1 - t)
            bwd.append(t2 - t1)
        return dict(fwd=fwd, bwd=bwd)

    def _data(self, rng):
        np = self.np
        x = rng.standard_normal((self.batch, 32, 32, 3), dtype=np.float32)
        y = rng.integers(0, 10, self.batch)
        return x, y

    def _step(self, x, y, variant="fused"):
        net = self.nets[variant]
        self.opt.zero_grad()
        loss = self.loss(net(x), y)
        net.backward(self.loss.backward())
        self.opt.step()
        return loss

    def step(self, rng, reps, variant="fused"):
        x, y = self._data(rng)
        self._step(x, y, variant)
        return times(lambda: self._step(x, y, variant), reps)

    def breakdown(self, rng, reps, variant="fused"):
        """Per-kind times inside real training steps (wrapping each layer class: the
        fast path's twins of Conv2d, BatchNorm2d and ReLU, unless variant is plain)."""
        import collections
        nn, fast = self.nn, self.fast
        acc = collections.Counter()
        wrapped = []

        def wrap(cls, label):
            f, b = cls.forward, cls.backward

            def fw(mod, *a):
                t = time.perf_counter()
                r = f(mod, *a)
                acc[label] += time.perf_counter() - t
                return r

            def bw(mod, g):
                t = time.perf_counter()
                r = b(mod, g)
                acc[label] += time.perf_counter() - t
                return r
            cls.forward, cls.backward = fw, bw
            wrapped.append((cls, f, b))

        twins = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU) if variant == "plain" else (
            fast.conv.FastConv2d, fast.layers.FastBatchNorm2d, fast.layers.FastReLU)
        for cls, label in (*zip(twins, ("conv", "batchnorm", "relu")), (nn.MaxPool2d, "pool"),
                           (nn.AvgPool2d, "pool"), (nn.Linear, "fc")):
            wrap(cls, label)
        x, y = self._data(rng)
        net = self.nets[variant]
        rows = []
        try:
            self._step(x, y, variant)
            for _ in range(reps):
                acc.clear()
                t0 = time.perf_counter()
                self.opt.zero_grad()
                t1 = time.perf_counter()
                self.loss(net(x), y)
                net.backward(self.loss.backward())
                t2 = time.perf_counter()
                self.opt.step()
                t3 = time.perf_counter()
                row = dict(acc, zero_grad=t1 - t0, sgd=t3 - t2, total=t3 - t0)
                row["other"] = (t2 - t1) - sum(acc.values())   # adds, loss, flatten, Python
                rows.append(row)
        finally:
            for cls, f, b in wrapped:
                cls.forward, cls.backward = f, b
        return rows

    def _set_recompute(self, mode):
        """mode: 'default' (fast/algorithms.py's choice), 'keep' or 'rebuild' (every k x k
        conv of the fused net): sets each Im2colGemm's ``recompute`` (fast/im2col.py)."""
        algs = [a for twin in self.nets["fused"].plan.fast.values()
                for a in getattr(twin, "algorithms", {}).values()
                if isinstance(a, self.fast.im2col.Im2colGemm)]
        if not hasattr(self, "_recompute_default"):
            self._recompute_default = [a.recompute for a in algs]
        for a, default in zip(algs, self._recompute_default):
            kxk = a.window[0] * a.window[1] > 1
            a.recompute = {"default": default, "keep": False, "rebuild": kxk}[mode]

    def memory(self, rng):
        """Peak bytes allocated by numpy during one training step (fused), above what was
        live before it (parameters, gradients, momentum), for each im2col policy."""
        import tracemalloc
        x, y = self._data(rng)
        self._step(x, y)                     # traces the model: the algorithms exist
        out = dict(params=sum(p.data.nbytes for p in self.model.parameters()))
        for mode in RECOMPUTE_MODES:
            self._set_recompute(mode)
            self._step(x, y)
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            self._step(x, y)
            out[mode] = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
        self._set_recompute("default")
        out["maxrss"] = _maxrss()
        return out

    def recompute_ab(self, rng, reps):
        """Step times (fused) for each im2col policy, interleaved."""
        x, y = self._data(rng)
        self._step(x, y)
        out = {mode: [] for mode in RECOMPUTE_MODES}
        for i in range(reps):
            for mode in RECOMPUTE_MODES[::1 if i % 2 == 0 else -1]:   # no order bias
                self._set_recompute(mode)
                self._step(x, y)                                        # settle the memory
                out[mode] += times(lambda: self._step(x, y), 1)
        self._set_recompute("default")
        return out


RECOMPUTE_MODES = ("default", "keep", "rebuild")


class TorchBackend:
    def __init__(self, batch, threads):
        t0 = time.perf_counter()
        sys.path.insert(0, HERE)
        import torch
        from threadpoolctl import threadpool_info

        from seed_model import build_torch
        self.import_s = time.perf_counter() - t0
        torch.set_num_threads(threads)
        self.torch, self.batch = torch, batch
        self.model = build_torch()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss = torch.nn.CrossEntropyLoss()
        self.threadpool_info = threadpool_info()

    def info(self, rng):
        torch = self.torch
        return dict(torch=torch.__version__, threads=torch.get_num_threads(),
                    threadpool=self.threadpool_info, mkldnn=torch.backends.mkldnn.is_available(),
                    parallel=torch.__config__.parallel_info().splitlines()[:6],
                    import_s=self.import_s)

    def conv(self, rng, key, reps):
        torch = self.torch
        cin, cout, k, s, p, h = key
        conv = torch.nn.Conv2d(cin, cout, k, s, p)
        x = torch.from_numpy(rng.standard_normal((self.batch, cin, h, h), dtype="float32"))
        x.requires_grad_(cin != 3)          # the stem's input needs no gradient
        y = conv(x)
        g = torch.from_numpy(rng.standard_normal(tuple(y.shape), dtype="float32"))
        y.backward(g)
        fwd, bwd = [], []
        for _ in range(reps):
            conv.zero_grad(set_to_none=True)
            x.grad = None
            t = time.perf_counter()
            y = conv(x)
            t1 = time.perf_counter()
            y.backward(g)
            t2 = time.perf_counter()
            fwd.append(t1 - t)
            bwd.append(t2 - t1)
        return dict(fwd=fwd, bwd=bwd)

    def step(self, rng, reps, variant="fused"):
        torch = self.torch
        x = torch.from_numpy(rng.standard_normal((self.batch, 3, 32, 32), dtype="float32"))
        y = torch.from_numpy(rng.integers(0, 10, self.batch))

        def one():
            self.opt.zero_grad()
            self.loss(self.model(x), y).backward()
            self.opt.step()
        one()
        return times(one, reps)

    def memory(self, rng):
        return dict(maxrss=_maxrss())


GEMMS = [(400, 1024, 1024), (1600, 1152, 128), (4900, 576, 64)]


def _maxrss():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _numba_layer():
    import numba
    try:
        return numba.threading_layer()
    except ValueError:
        return "not loaded (no parallel kernel has run)"


# ============================================================== warm start
WARM_CODE = """
import time, sys
t0 = time.perf_counter()
sys.path[:0] = [{root!r}, {here!r}]
import numpy as np
import minitorch_cnn
from minitorch_cnn.optim import SGD
from seed_model import build_minitorch
from threadpoolctl import threadpool_limits
threadpool_limits({threads}, user_api="blas")
t1 = time.perf_counter()
model, _ = build_minitorch()
net = minitorch_cnn.compile(model, input_grad=False)
opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
loss = minitorch_cnn.nn.CrossEntropyLoss()
rng = np.random.default_rng(0)
x = rng.standard_normal(({batch}, 32, 32, 3), dtype=np.float32)
y = rng.integers(0, 10, {batch})
t2 = time.perf_counter()
opt.zero_grad(); loss(net(x), y); net.backward(loss.backward()); opt.step()
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def warm_start(args, env):
    """Wall time from launching a fresh interpreter to the end of its first training step."""
    code = WARM_CODE.format(root=ROOT, here=HERE, threads=args.threads, batch=args.batch)
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if done.returncode:
        raise RuntimeError(done.stderr)
    imp, build, first = map(float, done.stdout.split())
    return dict(wall=wall, imports=imp, build=build, first_step=first)


# ==================================================================== report
def fmt_ms(s):
    return f"{s * 1e3:8.2f}"


def report_blas(info_m, info_t):
    print("\n## 4. BLAS and threading")
    for label, info in (("minitorch_cnn", info_m), ("PyTorch", info_t)):
        for pool in info["threadpool"]:
            print(f"{label:14s} {pool['user_api']:7s} {pool['internal_api']:9s} "
                  f"v{pool.get('version')} arch={pool.get('architecture')} "
                  f"threads={pool['num_threads']} ({os.path.basename(pool['filepath'])})")
    print(f"minitorch_cnn  kernels={info_m['backend']} (serial)  numpy {info_m['numpy']}  "
          f"numba {info_m['numba']}  numba threading layer: {info_m['numba_layer']}")
    print("minitorch_cnn  policy " + "  ".join(f"{k}={v}" for k, v in info_m["policy"].items()))
    print(f"PyTorch        {info_t['torch']}  torch threads={info_t['threads']}  "
          f"mkldnn={info_t['mkldnn']}")
    print(f"model          {info_m['model']}")


def report_convs(convs, conv_t, reps):
    """Section 1; returns the worst shape's forward + backward ratio."""
    print("\n## 1. Convolutions (forward, backward; ms, medians; ratio = minitorch / PyTorch)")
    print(f"{'shape':30s} {'x':>3s} {'fwd mt':>8s} {'fwd pt':>8s} {'ratio':>6s}  "
          f"{'bwd mt':>8s} {'bwd pt':>8s} {'ratio':>6s}  {'f+b':>6s}")
    worst, tot = 0, {"minitorch": 0.0, "torch": 0.0}
    for key, name, count, *_ in convs:
        m, t = conv_t[key]["minitorch"], conv_t[key]["torch"]
        mf, mb, tf, tb = (median(m["fwd"]), median(m["bwd"]), median(t["fwd"]), median(t["bwd"]))
        # f+b ratio: the median over rounds of each round's paired ratio (robust to drift)
        fb = median([(a + b) / (c + d) for a, b, c, d in zip(*(
            chunk_medians(side[k], reps) for side in (m, t) for k in ("fwd", "bwd")))])
        worst = max(worst, fb)
        tot["minitorch"] += count * (mf + mb)
        tot["torch"] += count * (tf + tb)
        print(f"{key:30s} {count:3d} {fmt_ms(mf)} {fmt_ms(tf)} {mf / tf:6.2f}  "
              f"{fmt_ms(mb)} {fmt_ms(tb)} {mb / tb:6.2f}  {fb:6.2f}")
    print(f"{'all 53 convs (x count)':30s}     {fmt_ms(tot['minitorch'])} "
          f"{fmt_ms(tot['torch'])} {tot['minitorch'] / tot['torch']:6.2f}   (fwd + bwd)")
    print(f"worst shape, forward + backward: {worst:.2f}x PyTorch (ratios: fwd, bwd = ratio of "
          "medians; f+b = median of the per-round paired ratios)")
    return worst


def report_steps(steps, breakdown, args, torch_version):
    """Section 2; returns (fused step, paired ratio to PyTorch, non-convolution time)."""
    sm, su, sp, st_ = (median(steps[k]) for k in (
        "minitorch", "minitorch_unfused", "minitorch_plain", "torch"))
    print("\n## 2. Training step (forward, loss, backward, SGD momentum update)")
    print("fused = compile(model, input_grad=False), as the trainer runs it (BatchNorm does the "
          "ReLU after it and the conv bias before it; the stem conv skips its input gradient); "
          "no fusion = compile(model, input_grad=False, fusions=()); plain = the teaching "
          "layers (train --no-compile; the stem computes its input gradient)")
    print(f"{'':34s} {'ms':>8s} {'img/s':>8s} {'/ PyTorch':>10s}")
    for label, v in (("minitorch_cnn (fused)", sm), ("minitorch_cnn (no fusion)", su),
                     ("minitorch_cnn (plain)", sp), ("PyTorch " + torch_version, st_)):
        print(f"{label:34s} {fmt_ms(v)} {args.batch / v:8.0f} {v / st_:10.2f}")
    per_round = [a / b for a, b in zip(chunk_medians(steps["minitorch"], args.steps),
                                       chunk_medians(steps["torch"], args.steps))]
    paired = median(per_round)
    print("ratio per round (fused / PyTorch): " + " ".join(f"{x:.2f}" for x in per_round)
          + f"; median {paired:.2f} (each round pairs runs made seconds apart, so drift in "
          "machine speed cancels)")
    keys = ["conv", "batchnorm", "relu", "pool", "fc", "other", "sgd", "zero_grad"]
    med = {k: median([row.get(k, 0.0) for row in breakdown]) for k in keys + ["total"]}
    non_conv = sum(med[k] for k in keys if k != "conv")
    print("minitorch_cnn step breakdown (ms, medians of steps timed layer by layer; fused):")
    print("  " + "  ".join(f"{k}={med[k] * 1e3:.1f}" for k in keys) +
          f"  total={med['total'] * 1e3:.1f}")
    print(f"  non-convolution work (everything but conv) = {non_conv * 1e3:.1f} ms per step")
    return sm, st_, paired, non_conv


def report_gflops(gemm, args, sm, st_):
    flops = conv_flops(args.batch, 32)
    print("\n## 3. Achieved GFLOP/s (conv + fc multiply-adds of a training step, "
          f"{flops / 1e9:.1f} GFLOP)")
    for k, v in gemm.items():
        m_, k_, n_ = map(int, k.split("x"))
        print(f"numpy float32 matmul {k:16s} {2 * m_ * k_ * n_ / median(v) / 1e9:7.1f} GFLOP/s")
    print(f"minitorch_cnn training step        {flops / sm / 1e9:7.1f} GFLOP/s")
    print(f"PyTorch training step              {flops / st_ / 1e9:7.1f} GFLOP/s")


def report_memory(mem_m, mem_t, recompute, warm, sm):
    print("\n## Memory and warm start")
    print("minitorch_cnn peak numpy allocation during a training step (tracemalloc, above the "
          f"live parameters, gradients and momentum; parameters alone {mem_m['params'] / 2**20:.0f}"
          " MiB):")
    labels = {"default": "default (fast/algorithms.py: rebuild where out_channels >= 128)",
              "keep": "every k x k conv keeps its im2col matrix",
              "rebuild": "every k x k conv rebuilds it in backward"}
    base = median(recompute["default"])
    for mode in RECOMPUTE_MODES:
        t = median(recompute[mode])
        print(f"  {labels[mode]:45s} {mem_m[mode] / 2**20:5.0f} MiB, step {t * 1e3:7.1f} ms "
              f"({t / base:.3f}x default)")
    print(f"max RSS of the worker processes: minitorch_cnn {mem_m['maxrss'] / 2**20:.0f} MiB, "
          f"PyTorch {mem_t['maxrss'] / 2**20:.0f} MiB")
    for i, w in enumerate(warm):
        launch = w["wall"] - w["build"] - w["first_step"]
        print(f"fresh process {i + 1}: launch + imports {launch:.2f}"
              f" s, build {w['build']:.2f} s, first step {w['first_step']:.2f} s, total "
              f"{w['wall']:.2f} s = steady step + {w['wall'] - sm:.2f} s")


# ====================================================================== the run
def measure(mt, pt, convs, args, busy, started):
    """The paired rounds: every conv shape, the training step (three variants of ours),
    numpy's GEMM; then the breakdown, the im2col policies and the memory."""
    conv_t = {c[0]: {"minitorch": dict(fwd=[], bwd=[]), "torch": dict(fwd=[], bwd=[])}
              for c in convs}
    steps = {"minitorch": [], "minitorch_unfused": [], "minitorch_plain": [], "torch": []}
    gemm = {}
    for r in range(args.rounds):
        order = [mt, pt] if r % 2 == 0 else [pt, mt]
        for c in convs:
            for w in order:
                res = w.ask_quiet(busy, args.retries, op="conv", key=list(c[3:]),
                                  reps=args.conv_reps)
                for k in ("fwd", "bwd"):
                    conv_t[c[0]][w.name][k] += res[k]
        for w in order:
            steps[w.name] += w.ask_quiet(busy, args.retries, op="step", reps=args.steps)
            if w is mt:
                for variant in ("unfused", "plain"):
                    steps["minitorch_" + variant] += mt.ask_quiet(
                        busy, args.retries, op="step", reps=args.steps, variant=variant)
        for k, v in mt.ask_quiet(busy, args.retries, op="gemm", reps=5).items():
            gemm.setdefault(k, []).extend(v)
        print(f"  round {r + 1}/{args.rounds} done ({time.time() - started:.0f} s)",
              file=sys.stderr)
    breakdown = mt.ask_quiet(busy, args.retries, op="breakdown", reps=max(3, args.steps))
    recompute = mt.ask_quiet(busy, args.retries, op="recompute_ab", reps=max(3, args.rounds))
    return dict(conv=conv_t, steps=steps, gemm=gemm, breakdown=breakdown, recompute=recompute,
                memory=mt.ask(op="memory"), memory_torch=pt.ask(op="memory"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", choices=["minitorch", "torch"])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7, help="alternating A/B rounds")
    ap.add_argument("--steps", type=int, default=3, help="training steps per round and side")
    ap.add_argument("--conv-reps", type=int, default=5, help="conv repetitions per round")
    ap.add_argument("--quick", action="store_true", help="3 rounds, fewer repetitions")
    ap.add_argument("--smoke", action="store_true",
                    help="batch 2, one round of one repetition, no retries: that it runs")
    ap.add_argument("--retries", type=int, default=4,
                    help="repeat a measurement up to this many times while other processes "
                         "keep the machine busy")
    ap.add_argument("--json", help="also write the raw measurements here")
    args = ap.parse_args()
    if args.worker:
        side = (MinitorchBackend if args.worker == "minitorch" else TorchBackend)(
            args.batch, args.threads)
        return serve(side)
    if args.quick:
        args.rounds, args.steps, args.conv_reps = 3, 2, 3
    if args.smoke:
        args.batch, args.rounds, args.steps, args.conv_reps, args.retries = 2, 1, 1, 1, 0

    started = time.time()
    header("minitorch_cnn vs PyTorch CPU: the seed model ResNet50_layer4",
           f"batch {args.batch}, 32x32x3, float32, {args.threads} threads, {args.rounds} rounds "
           "alternating A/B, medians")
    flags = ["--batch", str(args.batch), "--threads", str(args.threads)]
    mt, pt = (Worker(__file__, [kind] + flags, kind) for kind in ("minitorch", "torch"))
    info_m, info_t = mt.ask(op="info"), pt.ask(op="info")
    report_blas(info_m, info_t)
    convs = distinct_convs(args.batch, 32)
    busy = []   # per measurement: cores used by other processes meanwhile
    raw = measure(mt, pt, convs, args, busy, started)
    for w in (mt, pt):
        w.close()
    env = worker_env()
    raw["warm"] = [quiet(lambda: warm_start(args, env), args.retries, busy) for _ in range(2)]

    print("\n" + noise_line(busy, args.retries))
    report_convs(convs, raw["conv"], args.conv_reps)
    sm, st_, _, _ = report_steps(raw["steps"], raw["breakdown"], args, info_t["torch"])
    report_gflops(raw["gemm"], args, sm, st_)
    report_memory(raw["memory"], raw["memory_torch"], raw["recompute"], raw["warm"], sm)
    print(f"(run took {time.time() - started:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(raw, args=vars(args), info=dict(minitorch=info_m, torch=info_t),
                           busy=busy), f)


if __name__ == "__main__":
    main()
