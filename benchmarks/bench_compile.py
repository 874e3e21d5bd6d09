"""The trainer's training step before and after issue 13, with and without compile (run by hand).

    python3 benchmarks/bench_compile.py --before /work/wt-before     # as the machine is
    OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512 python3 benchmarks/bench_compile.py --before ...
    python3 benchmarks/bench_compile.py --before ... --quick         # a rougher run
    python3 benchmarks/bench_compile.py --smoke                      # tiny batches: that it runs

``--before`` is a checkout of the code before the fast path (commit 3660c3a:
``git worktree add /work/wt-before 3660c3a``). Prints, for the seed model
(models.resnet50_layer4, batch 100, 32x32) and FastNet (models.fastnet_whiten,
batch 512, 32x32), the step time of the trainer's training step (forward,
loss, backward, SGD with Nesterov momentum and weight decay, zero_grad, as
Trainer.train_step) for four variants:

  before     the old commit as its trainer ran it (training.trainer.speed_up:
             BatchNorm fused with ReLU, conv bias folded, stem without dX)
  compile    minitorch_cnn.compile(model, input_grad=False): the trainer's default
  no-fusion  minitorch_cnn.compile(model, input_grad=False, fusions=())
  plain      the plain teaching layers (``train --no-compile``)

(``--variants ...,other --other PATH``: compile on another checkout, e.g. the main
branch, for a paired step time against it; ``--memory``: also the peak numpy memory of one
step per variant, by tracemalloc, each in a process of its own)
and ResNet-50 (ImageNet, batch 8 at 64x64) compiled against plain, and the
fusion coverage (fusion_counts()) of every model in models.MODELS.

Every variant runs in its own worker process (old and new code never share
a process; nor do Numba and the others' memory) that warms up, then times
steps on command; the parent runs the variants of one model in paired rounds
(benchmarks/harness.py). Beside wall time it records each step's process CPU
time (time.process_time: all threads of the worker) and how many cores the
machine's *other* processes used meanwhile, and numpy's float32 GEMM between
rounds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from harness import Worker, header, load, round_order, serve, sgemm_gflops  # noqa: E402

VARIANTS = ("before", "compile", "no-fusion", "plain")
# on request (--variants): compile / no-fusion with every convolution keeping its im2col
# matrix for backward (fast/algorithms.py rebuilds it for k x k convs with >= 128 outputs),
# and the code of another checkout (--other PATH, compiled as there: the same step, paired)
EXTRA_VARIANTS = ("compile-keep", "no-fusion-keep", "other")
MODELS = (("resnet50_layer4", 100, 32), ("fastnet_whiten", 512, 32))
RESNET50 = ("resnet50", 8, 64)
SMOKE = (("resnet50_layer4", 2, 32), ("fastnet_whiten", 2, 32)), ("resnet50", 2, 32)


# ================================================================== worker
class StepSide:
    """One model and variant in this process: build and warm up, then time steps on command."""

    def __init__(self, args):
        sys.path.insert(0, args.root)
        import numpy as np

        if args.memory:                                # numpy's allocations, from the start
            import tracemalloc
            tracemalloc.start()
        import minitorch_cnn
        from minitorch_cnn import models, nn, optim
        rng = np.random.default_rng(0)
        model = models.get_model(args.model, num_classes=10 if args.model != "resnet50" else 1000,
                                 rng=np.random.default_rng(1))
        x = rng.standard_normal((args.batch, args.size, args.size, 3), dtype=np.float32)
        y = rng.integers(0, 10, args.batch)
        if hasattr(model, "init_from_data"):           # FastNet's whitening stem (prepare_model)
            model.init_from_data(x)
        if args.variant == "before":
            from minitorch_cnn.training.trainer import speed_up
            speed_up(model, stem_first=True)
            net = model
        elif args.variant == "plain":
            net = model
        else:
            from minitorch_cnn.fast import FUSIONS
            fusions = () if args.variant.startswith("no-fusion") else FUSIONS
            net = minitorch_cnn.compile(model, input_grad=False, fusions=fusions)
        model.train()
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                        weight_decay=5e-4)
        criterion = nn.CrossEntropyLoss()

        def train_step():                              # Trainer.train_step, less the scheduler
            loss = criterion(net(x), y)
            net.backward(criterion.backward())
            opt.step()
            model.zero_grad()
            return loss

        for _ in range(args.warmup):
            train_step()
            if args.variant.endswith("-keep"):     # the algorithms exist after the first forward
                from minitorch_cnn.fast.im2col import Im2colGemm
                for twin in net.plan.fast.values():
                    for alg in getattr(twin, "algorithms", {}).values():
                        if isinstance(alg, Im2colGemm) and alg.recompute:
                            alg.recompute, alg.name = False, "im2col+gemm (kept for backward)"
        self.train_step = train_step
        self.ready_info = dict(kind=repr(net) if net is not model else type(model).__name__,
                               code=args.root,
                               fusions=net.fusion_counts() if net is not model else None)

    def ready(self, rng):
        return self.ready_info

    def peak(self, rng):
        """Peak numpy memory (bytes) of one step, everything live included (--memory)."""
        import tracemalloc
        tracemalloc.reset_peak()
        self.train_step()
        return tracemalloc.get_traced_memory()[1]

    def steps(self, rng, n):
        """[(wall, cpu)] of n training steps."""
        out = []
        for _ in range(n):
            c, t = time.process_time(), time.perf_counter()
            self.train_step()
            out.append((time.perf_counter() - t, time.process_time() - c))
        return out


def coverage_main(args):
    """fusion_counts() of compile(model, input_shape=...) for every zoo model, as JSON lines."""
    sys.path.insert(0, args.root)
    import numpy as np

    import minitorch_cnn
    from minitorch_cnn import models, nn
    for name, info in models.MODELS.items():
        model = info.factory(rng=np.random.default_rng(0))
        fast = minitorch_cnn.compile(model, input_grad=False, input_shape=info.input_shape)
        kinds = {k: sum(type(m) is cls for m in model.modules())
                 for k, cls in (("conv", nn.Conv2d), ("bn", nn.BatchNorm2d), ("relu", nn.ReLU))}
        biased = sum(type(m) is nn.Conv2d and m.bias is not None for m in model.modules())
        print(json.dumps(dict(model=name, shape=info.input_shape, biased_conv=biased,
                              **kinds, **fast.fusion_counts())), flush=True)


# ================================================================== parent
def workers_for(variants, roots, model, batch, size, args, env, memory=False):
    return [Worker(__file__, ["--root", roots[v], "--model", model, "--batch", str(batch),
                              "--size", str(size), "--variant", v, "--warmup", str(args.warmup)]
                   + (["--memory"] if memory else []), v, env=env, cwd=roots[v])
            for v in variants]


def compare(title, variants, roots, model, batch, size, args, env, gemm, log):
    """Interleaved rounds over `variants` of one model; prints and returns the medians."""
    print(f"\n## {title}: {model}, batch {batch}, {size}x{size}, "
          f"{args.rounds_of[model]} rounds x {args.steps[model]} steps per variant")
    workers = workers_for(variants, roots, model, batch, size, args, env)
    for w in workers:
        print(f"  {w.name:10s} {w.ask(op='ready')['kind']}")
    wall = {v: [] for v in variants}
    cpu = {v: [] for v in variants}
    others = []
    for r in range(args.rounds_of[model]):
        for w in round_order(workers, r):
            out = w.ask_quiet(others, 0, op="steps", n=args.steps[model])
            wall[w.name].append([s[0] for s in out])
            cpu[w.name].append([s[1] for s in out])
        gemm.append(sgemm_gflops())
        print(f"  round {r + 1}/{args.rounds_of[model]} ({time.time() - args.started:.0f} s, "
              f"load {load()})", file=sys.stderr)
    for w in workers:
        w.close()
    ref = variants[0]
    print(f"{'variant':10s} {'wall ms':>9s} {'cpu ms':>9s} {'cpu/wall':>8s} {'img/s':>7s} "
          f"{'/ ' + ref + ' (paired)':>20s} {'rounds':>s}")
    res = {}
    for v in variants:
        mw = statistics.median(sum(wall[v], []))
        mc = statistics.median(sum(cpu[v], []))
        per_round = [statistics.median(a) / statistics.median(b) for a, b in zip(wall[v], wall[ref])]
        res[v] = dict(wall=mw, cpu=mc, ratio=statistics.median(per_round), rounds=per_round)
        cpu_ratio = statistics.median([statistics.median(a) / statistics.median(b)
                                       for a, b in zip(cpu[v], cpu[ref])])
        res[v]["cpu_ratio"] = cpu_ratio
        print(f"{v:10s} {mw * 1e3:9.1f} {mc * 1e3:9.1f} {mc / mw:8.2f} {batch / mw:7.0f} "
              f"{res[v]['ratio']:9.3f} wall {cpu_ratio:5.3f} cpu  "
              + " ".join(f"{x:.2f}" for x in per_round))
    if args.memory:                                # one process per variant, one at a time
        for w in workers_for(variants, roots, model, batch, size, args, env, memory=True):
            w.ask(op="ready")
            res[w.name]["peak"] = w.ask(op="peak")
            w.close()
        print("peak numpy memory of one step (tracemalloc; parameters, optimizer state and "
              "workspaces included): " + ", ".join(
                  f"{v} {res[v]['peak'] / 2**20:.0f} MiB ({res[v]['peak'] / res[ref]['peak']:.3f})"
                  for v in variants))
    print(f"other processes used {statistics.median([o for o in others if o is not None] or [0]):.2f}"
          f" cores (median over measurements; max "
          f"{max([o for o in others if o is not None] or [0]):.2f})")
    log.extend(o for o in others if o is not None)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", default="/work/wt-before",
                    help="a checkout of commit 3660c3a (the code before the fast path)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true",
                    help="3 rounds (FastNet 2), 1 step each, 1 warm-up step: for a busy machine")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--smoke", action="store_true",
                    help="batch 2 at 32x32, 1 round, variants compile "
                         "and plain, no --before: that it runs")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: seed,fastnet,"
                                               "resnet50,coverage")
    ap.add_argument("--json", help="also write the raw medians here")
    ap.add_argument("--other", help="the checkout the variant 'other' runs (compiled, as its "
                                    "trainer does), e.g. a worktree of the main branch")
    ap.add_argument("--memory", action="store_true",
                    help="also the peak numpy memory of one step per variant (tracemalloc, "
                         "in a separate process per variant)")
    # worker options
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--coverage", action="store_true")
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--model")
    ap.add_argument("--variant", choices=VARIANTS + EXTRA_VARIANTS)
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma list for the seed and FastNet comparisons (the first is the "
                         "reference of the ratios); also: " + ", ".join(EXTRA_VARIANTS))
    ap.add_argument("--batch", type=int)
    ap.add_argument("--size", type=int)
    args = ap.parse_args()
    if args.worker:
        return serve(StepSide(args))
    if args.coverage:
        return coverage_main(args)
    models, resnet50 = MODELS, RESNET50
    if args.quick:
        args.rounds, args.warmup = 3, 1
    if args.smoke:
        args.rounds, args.warmup, args.variants = 1, 1, "compile,plain"
        models, resnet50 = SMOKE
    args.steps = {"resnet50_layer4": 1 if args.quick else 2, "fastnet_whiten": 1,
                  "resnet50": 1 if args.quick else 2}
    args.rounds_of = {"resnet50_layer4": args.rounds, "resnet50": args.rounds,
                      "fastnet_whiten": 2 if args.quick else args.rounds}
    before = os.path.abspath(args.before)
    variants = tuple(args.variants.split(","))
    if "before" in variants and not os.path.isfile(
            os.path.join(before, "minitorch_cnn", "training", "trainer.py")):
        sys.exit(f"--before {before}: not a minitorch_cnn checkout (git worktree add ... 3660c3a)")
    if "other" in variants and not (args.other and os.path.isdir(
            os.path.join(args.other, "minitorch_cnn"))):
        sys.exit(f"--variants other needs --other PATH, a minitorch_cnn checkout; got {args.other}")
    rev = subprocess.run(["git", "-C", before, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip() or "(none)"
    here_rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
    skip = set(filter(None, args.skip.split(",")))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args.started = time.time()
    load0 = load()
    header("The trainer's training step: before issue 13, compile, no fusion, plain",
           "forward, CrossEntropyLoss, backward, SGD(lr 0.01, momentum 0.9, nesterov, weight "
           f"decay 5e-4), zero_grad; warm-up {args.warmup} steps per worker")
    print(f"code     new: {ROOT} at {here_rev}; before: {before} at {rev}")
    gemm, others = [sgemm_gflops()], []
    roots = dict({v: ROOT for v in VARIANTS + EXTRA_VARIANTS}, before=before,
                 other=os.path.abspath(args.other or ROOT))
    unknown = set(variants) - set(roots)
    if unknown:
        sys.exit(f"--variants: unknown {sorted(unknown)}; expected some of {sorted(roots)}")
    results = {}
    for model, batch, size in models:
        part = "seed" if model == "resnet50_layer4" else "fastnet"
        if part not in skip:
            results[model] = compare("Training step", variants, roots, model, batch, size,
                                     args, env, gemm, others)
    if "resnet50" not in skip:
        model, batch, size = resnet50
        results[model] = compare("ResNet-50 compiled against plain", ("plain", "compile"), roots,
                                 model, batch, size, args, env, gemm, others)
    if "coverage" not in skip:
        print("\n## Fusion coverage: compile(model, input_grad=False, input_shape=...)"
              ".fusion_counts() per zoo model")
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--coverage"],
                             capture_output=True, text=True, env=env, cwd=ROOT)
        if out.returncode:
            raise RuntimeError(out.stderr)
        print(f"{'model':24s} {'input':>12s} {'Conv2d':>6s} {'biased':>6s} {'BN':>4s} {'ReLU':>4s} "
              f"{'bn_relu':>7s} {'stem dX skipped':>15s}")
        for line in out.stdout.splitlines():
            r = json.loads(line)
            print(f"{r['model']:24s} {'x'.join(map(str, r['shape'])):>12s} {r['conv']:6d} "
                  f"{r['biased_conv']:6d} {r['bn']:4d} {r['relu']:4d} {r['bn_relu']:7d} "
                  f"{r['stem_input_grad_skipped']:15d}")
        print("(ReLU = ReLU modules; one module may be called more than once, e.g. in a "
              "Bottleneck; bn_relu counts the BatchNorm2d->ReLU calls fused)")
    print(f"\nnumpy float32 GEMM 400x1024x1024: {statistics.median(gemm):.0f} GFLOP/s median "
          f"({min(gemm):.0f}-{max(gemm):.0f} over {len(gemm)} measurements in this run)")
    print(f"load     {load0} at start, {load()} at the end; other processes used "
          f"{statistics.median(others or [0]):.2f} cores median, "
          f"{max(others or [0]):.2f} max, during the timed steps")
    print(f"(run took {time.time() - args.started:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(results=results, gemm=gemm, others=others), f)


if __name__ == "__main__":
    main()
