"""Compare the per-step training losses of two runs (ours and the PyTorch twin's metrics.json).

    python benchmarks/compare_losses.py runs/ours/metrics.json runs/torch/metrics.json

Prints, for every step, both losses and their relative difference, then the
largest relative difference over the first 5 steps and over all of them,
and the accuracies the two runs recorded (per epoch and final).
"""
import json
import sys

import numpy as np


def main(ours_path, theirs_path):
    ours, theirs = (json.load(open(p)) for p in (ours_path, theirs_path))
    a, b = np.asarray(ours["step_loss"]), np.asarray(theirs["step_loss"])
    n = min(len(a), len(b))
    rel = np.abs(a[:n] - b[:n]) / np.abs(b[:n])
    print(f"{'step':>4}  {'minitorch_cnn':>13}  {'PyTorch':>9}  {'rel. diff':>9}")
    for i in range(n):
        print(f"{i + 1:4d}  {a[i]:13.6f}  {b[i]:9.6f}  {rel[i]:9.2e}")
    print(f"steps compared: {n}; largest relative difference: first 5 steps "
          f"{rel[:5].max():.2e}, all {rel.max():.2e}; mean loss ours {a[:n].mean():.5f}, "
          f"PyTorch {b[:n].mean():.5f}")
    for name, run in (("minitorch_cnn", ours), ("PyTorch", theirs)):
        accs = {k: v for row in run["epochs"] for k, v in row.items() if k.endswith("_acc")}
        print(f"{name}: last epoch row {accs}; final {run.get('final', {})}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
