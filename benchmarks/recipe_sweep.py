"""Run several torch_train.py configurations at once and tabulate their validation accuracy.

How docs/results.md's recipe calibration was made: each run is the PyTorch
twin of a zoo model on our data pipeline, initial weights and schedule
(see torch_train.py), all sharing one GPU (or the CPU), each in its own
process and each stopped after ``--limit`` seconds (its metrics are written
after every epoch, so a stopped run still reports the epochs it finished).

    python benchmarks/recipe_sweep.py --data-dir DATA --device cuda --out runs/sweep \\
        "fast_e8: --model fastnet --epochs 8" \\
        "fast_e8_tta: --model fastnet --epochs 8 --tta --crop-padding 2"

A run is ``NAME: FLAGS``; the flags come after ``--preset cifar10`` and so
override it. Writes OUT/NAME/ (metrics, curves, log) and OUT/sweep.json
(every run's flags and per-epoch validation accuracy and training loss),
and prints a table.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_run(text):
    name, sep, flags = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"a run is 'NAME: FLAGS', got {text!r}")
    return name.strip(), shlex.split(flags)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=parse_run, metavar="'NAME: FLAGS'")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", default="runs/sweep")
    p.add_argument("--limit", type=float, default=600, help="seconds each run may take")
    args = p.parse_args(argv)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs = {}
    for name, flags in args.runs:
        out = os.path.join(args.out, name)
        os.makedirs(out, exist_ok=True)
        cmd = [sys.executable, os.path.join(HERE, "torch_train.py"), "--preset", "cifar10",
               "--data-dir", args.data_dir, "--device", args.device, "--log-every", "100000",
               "--out", out, *flags]
        log = open(os.path.join(out, "log.txt"), "w")
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                       flags, log)
    deadline = time.monotonic() + args.limit
    for proc, _, log in procs.values():
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    table = {}
    for name, (proc, flags, _) in procs.items():
        path = os.path.join(args.out, name, "metrics.json")
        rows = json.load(open(path))["epochs"] if os.path.exists(path) else []
        table[name] = {"flags": " ".join(flags), "exit": proc.returncode,
                       "validation_acc": [round(r["validation_acc"], 2) for r in rows],
                       "train_loss": [round(r["train_loss"], 4) for r in rows]}
        last = f"{rows[-1]['validation_acc']:6.2f}" if rows else "     -"
        print(f"{name:24s} epochs run {len(rows):3d}  last validation % {last}  "
              f"({' '.join(flags)})", flush=True)
    with open(os.path.join(args.out, "sweep.json"), "w") as f:
        json.dump({"device": args.device, "limit_s": args.limit, "runs": table}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
