"""Where a training epoch's time goes, by kind of work (run by hand).

Runs ``--steps`` training steps of a preset through the ``train`` command's
own ``Trainer`` (its data, augmentation, batch, model through ``compile(model)``,
loss, optimizer, schedule), after one warm-up step, under cProfile, and sorts every
function's own time into:

  conv GEMMs          the convolution algorithms' own time: their matrix
                      multiplies (numpy/OpenBLAS, called inline) and reshapes
  conv transforms     the Numba im2col/col2im and Winograd transforms
  BatchNorm, GELU/ReLU, pooling, loss, optimizer, data (loading, augmentation),
  other               everything else (Python glue, the linear head, ...)

and prints each share of the profiled time with the step's wall time and the
processor, BLAS setting and numpy sgemm GFLOP/s measured in the same run.
cProfile adds a little to each Python call; the steps are large, so the shares
are what matters. AVX2 on an AVX-512 machine: set Numba's target and
OpenBLAS's kernels on the command, as for any benchmark here:

    python benchmarks/profile_epoch.py --preset cifar10-muon --steps 3
    NUMBA_CPU_NAME=haswell OPENBLAS_CORETYPE=Haswell \\
        python benchmarks/profile_epoch.py --preset cifar10-muon --steps 3
    python benchmarks/profile_epoch.py --smoke     # that it runs: tiny synthetic data
"""
import argparse
import cProfile
import os
import pstats
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import minitorch_cnn  # noqa: E402,F401  (first: its threading policy precedes NumPy, as in `train`)
from harness import header, sgemm_gflops  # noqa: E402

# (category, substrings of "file:function"), first match wins
CATEGORIES = [
    ("conv transforms", ("_im2col", "_col2im", "winograd_numba.py", "winograd_filter")),
    ("conv GEMMs", ("fast/im2col.py", "fast/winograd.py", "fast/small_map.py", "fast/conv.py",
                    "method 'dot'", "built-in method numpy.matmul")),
    ("BatchNorm", ("_batchnorm", "_channel_stats", "_scale_shift", "normalization.py",
                   "FastBatchNorm")),
    ("GELU/ReLU", ("gelu", "relu", "activation")),
    ("pooling", ("maxpool", "pooling.py")),
    ("loss", ("loss.py",)),
    ("optimizer", ("optim/",)),
    ("data", ("data/", "augment")),
]


def category(key):
    filename, _, name = key
    where = f"{filename}:{name}"
    for cat, needles in CATEGORIES:
        if any(n in where for n in needles):
            return cat
    return "other"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="cifar10-muon")
    ap.add_argument("--data-dir", default=None, help="CIFAR-10 as for train --data-dir")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=0, help="default: the preset's")
    ap.add_argument("--smoke", action="store_true", help="synthetic data, batch 16, 1 step")
    args = ap.parse_args(argv)

    from minitorch_cnn.training import PRESETS, TrainConfig, Trainer
    settings = dict(PRESETS[args.preset])
    if args.smoke:
        settings.update(data="synthetic", synthetic_size=64, val_split=16, batch_size=16)
        args.steps = 1
    elif args.data_dir:
        settings["data_dir"] = args.data_dir
    if args.batch_size:
        settings["batch_size"] = args.batch_size
    cfg = TrainConfig(**settings)
    header(f"Where an epoch of --preset {args.preset} goes",
           f"batch {cfg.batch_size}, {args.steps} profiled steps after 1 warm-up, "
           f"Numba target {os.environ.get('NUMBA_CPU_NAME', 'host')}")
    print(f"numpy sgemm: {sgemm_gflops():.0f} GFLOP/s")

    trainer = Trainer(cfg)                       # the train command's own set-up and step
    batches = trainer.train_loader.iter_epoch(0)

    def step():
        trainer.train_step(*next(batches))

    step()                                       # warm-up: Numba compiles, workspaces
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(args.steps):
        step()
    prof.disable()
    wall = (time.perf_counter() - t0) / args.steps
    totals = {}
    for key, (_, _, tottime, _, _) in pstats.Stats(prof).stats.items():
        totals[category(key)] = totals.get(category(key), 0.0) + tottime
    whole = sum(totals.values())
    print(f"step: {wall:.3f} s wall ({cfg.batch_size / wall:.0f} images/s); profiled "
          f"{whole / args.steps:.3f} s per step")
    print(f"{'kind of work':<18} {'s/step':>8} {'share':>7}")
    for cat, _ in CATEGORIES + [("other", ())]:
        t = totals.get(cat, 0.0)
        print(f"{cat:<18} {t / args.steps:8.3f} {100 * t / whole:6.1f} %")


if __name__ == "__main__":
    main()
