"""Run Keller Jordan's original airbench scripts on this project's data (run by hand).

The baselines of docs/results.md: ``airbench94.py`` and ``airbench94_muon.py``
(KellerJordan/cifar10-airbench; fetch them yourself, this project does not ship
them) as their author wrote them, with only what a machine without CUDA or the
official test split needs changed. Two steps:

    python benchmarks/airbench_original.py export --data-dir DATA --seed 0 --out split0
    python benchmarks/airbench_original.py run airbench94_muon.py --split split0 \\
        --device cpu --runs 1 --threads 2

``export`` writes the training images minus the ``--val-split`` held out by
``train --seed S --val-split N`` (the same images our run trains on) as
``train.pt`` and the held-out ones as ``test.pt``, in the format the scripts'
``CifarLoader`` saves on its first run, so they read them instead of
downloading CIFAR-10. ``run`` edits the script's text and executes it as
``__main__``; every edit must match the script exactly once (a script that
changed upstream stops with the edit that failed), and the list is printed:

* data: ``CifarLoader("cifar10", ...)`` reads ``--split``;
* device: ``--device cpu`` or ``cuda``; on the CPU the CUDA event timers become
  wall-clock timers (``time.perf_counter``) and ``torch.cuda.synchronize`` a no-op;
* precision: float32 everywhere (the scripts use float16 activations and a
  bfloat16 Newton--Schulz, which a CPU runs slowly or not at all); on CUDA TF32
  is switched off so that float32 means float32;
* no ``torch.compile`` (it needs a C compiler toolchain at run time on the CPU) and
  so no warm-up run; ``--runs`` training runs instead of 25 / 200;
* where torchvision is not installed (PyPI has no CPU build matching a ``+cpu``
  torch), a stand-in for the two names the scripts use: ``transforms.Normalize``
  (torchvision's formula, ``(x - mean) / std`` per channel) and
  ``datasets.CIFAR10``, which ``export``'s files make unreachable.

The scripts print their own tables (per-epoch accuracy, ``time_seconds``: training
time without evaluation) and the mean over runs; this prints the wall time of the
whole command at the end, the figure docs/results.md compares with ``train``.
Needs torch (``pip install -e .[torch]``); run it in its own process.
"""
import argparse
import os
import sys
import time

EDITS = {
    "airbench94_muon.py": [
        ("@torch.compile\ndef zeropower", "def zeropower"),
        ("X = G.bfloat16()", "X = G.float()"),
        ('map_location=torch.device("cuda")', "map_location=torch.device(DEVICE)"),
        ("(self.images.half() / 255)", "(self.images.float() / 255)"),
        ("                mod.half()", "                mod.float()"),
        ("CifarNet().cuda()", "CifarNet().to(DEVICE)"),
        ('    model.compile(mode="max-autotune")\n', ""),
        ('    main("warmup", model)\n', ""),
        ("for run in range(200)", "for run in range(RUNS)"),
        ('CifarLoader("cifar10", train=False', "CifarLoader(SPLIT, train=False"),
        ('CifarLoader("cifar10", train=True', "CifarLoader(SPLIT, train=True"),
    ],
    "airbench94.py": [
        ("map_location=torch.device(gpu)", "map_location=torch.device(DEVICE)"),
        ("(self.images.half() / 255)", "(self.images.float() / 255)"),
        ("net = net.half().cuda()", "net = net.float().to(DEVICE)"),
        ("for run in range(25)", "for run in range(RUNS)"),
        ("CifarLoader('cifar10', train=True", "CifarLoader(SPLIT, train=True"),
        ("CifarLoader('cifar10', train=False", "CifarLoader(SPLIT, train=False"),
    ],
}


def export(args):
    """Our run's training images and held-out images as airbench's train.pt / test.pt."""
    import torch  # noqa: F401 -- before minitorch_cnn, as torch_train.py does
    os.environ.setdefault("MINITORCH_KERNELS", "numpy")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from minitorch_cnn.training import TrainConfig
    from minitorch_cnn.training.recipe import load_datasets
    train, val, _ = load_datasets(TrainConfig(data="cifar10", data_dir=args.data_dir,
                                              val_split=args.val_split, seed=args.seed), "val")
    os.makedirs(args.out, exist_ok=True)
    for name, part in (("train.pt", train), ("test.pt", val)):
        torch.save({"images": torch.from_numpy(part.images.copy()),
                    "labels": torch.from_numpy(part.labels.astype("int64")),
                    "classes": list(part.classes)}, os.path.join(args.out, name))
    print(f"{args.out}: train.pt {len(train)} images, test.pt {len(val)} held out "
          f"(seed {args.seed}, --val-split {args.val_split})")


class WallEvent:
    """``torch.cuda.Event(enable_timing=True)`` on the CPU: ``elapsed_time`` in ms."""

    def __init__(self, enable_timing=True):
        self.t = None

    def record(self):
        self.t = time.perf_counter()

    def elapsed_time(self, end):
        return 1e3 * (end.t - self.t)


def torchvision_stand_in():
    """``torchvision.transforms.Normalize`` and a ``datasets.CIFAR10`` that refuses."""
    import types

    import torch

    class Normalize:
        def __init__(self, mean, std):
            self.mean, self.std = mean, std

        def __call__(self, x):
            def per_channel(v):
                return torch.as_tensor(v, dtype=x.dtype, device=x.device).view(-1, 1, 1)
            return (x - per_channel(self.mean)) / per_channel(self.std)

    def cifar10(*args, **kwargs):
        raise SystemExit("airbench_original: no train.pt/test.pt in --split: run export first")

    tv = types.ModuleType("torchvision")
    tv.transforms = types.SimpleNamespace(Normalize=Normalize)
    tv.datasets = types.SimpleNamespace(CIFAR10=cifar10)
    sys.modules["torchvision"], sys.modules["torchvision.transforms"] = tv, tv.transforms
    print("torchvision not installed: its stand-in (Normalize, no CIFAR10 download)")


def run(args):
    import torch
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 -- absent, or a build for another torch
        torchvision_stand_in()
    if args.threads:
        torch.set_num_threads(args.threads)
    name = os.path.basename(args.script)
    if name not in EDITS:
        raise SystemExit(f"airbench_original: expected one of {sorted(EDITS)}, got {name!r}")
    with open(args.script) as f:
        code = f.read()
    for old, new in EDITS[name]:
        n = code.count(old)
        if n != 1:
            raise SystemExit(f"airbench_original: {name}: expected {old!r} once, found it {n} "
                             "times (the script changed upstream?)")
        code = code.replace(old, new)
        print(f"edit: {old.strip()!r} -> {new.strip()!r}")
    if args.device == "cpu":
        torch.cuda.Event, torch.cuda.synchronize = WallEvent, lambda *a, **k: None
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    split, script = os.path.abspath(args.split), os.path.abspath(args.script)
    os.makedirs(args.out, exist_ok=True)
    os.chdir(args.out)                             # the script writes logs/<uuid>/log.pt here
    sys.argv = [script]                            # it reads its own code from sys.argv[0]
    print(f"{name} on {args.device} ({torch.get_num_threads()} threads), torch "
          f"{torch.__version__}, data {split}, {args.runs} run(s)", flush=True)
    t0 = time.perf_counter()
    exec(compile(code, args.script, "exec"),
         {"__name__": "__main__", "DEVICE": args.device, "SPLIT": split, "RUNS": args.runs})
    print(f"wall time of the command: {time.perf_counter() - t0:.1f} s", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="our split as airbench's train.pt / test.pt")
    e.add_argument("--data-dir", required=True, help="as train --data-dir")
    e.add_argument("--seed", type=int, default=0, help="as train --seed: it picks the split")
    e.add_argument("--val-split", type=int, default=5000)
    e.add_argument("--out", required=True)
    r = sub.add_parser("run", help="an original script, edited as listed, on a split")
    r.add_argument("script", help="path to airbench94.py or airbench94_muon.py")
    r.add_argument("--split", required=True, help="a folder written by export")
    r.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    r.add_argument("--runs", type=int, default=1)
    r.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    r.add_argument("--out", default=".", help="where the script's logs/ go")
    args = ap.parse_args(argv)
    (export if args.command == "export" else run)(args)


if __name__ == "__main__":
    main()
