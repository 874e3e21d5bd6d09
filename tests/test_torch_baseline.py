"""benchmarks/torch_train.py, the PyTorch baseline of docs/results.md, sees exactly our run.

Same initial weights, batches, augmentation and learning rates: the
per-step losses of a short run agree with the trainer's until float32
rounding, and a different seed (other weights and batches) does not.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minitorch_cnn.cli import main

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "torch_train.py"
RUN = ["--model", "resnet8", "--synthetic-size", "200", "--batch-size", "50", "--epochs", "2",
       "--max-steps", "3", "--optimizer", "sgd", "--lr", "0.05", "--weight-decay", "5e-4",
       "--label-smoothing", "0.1", "--augment", "--val-split", "40", "--log-every", "1"]


# the cifar10-fast recipe's parts: whitening stem (set from the data), frozen parameters,
# BatchNorm biases at 64x the lr (torch: parameter groups), a linear one-cycle
RUN_FAST = ["--model", "fastnet_whiten", "--synthetic-size", "200", "--batch-size", "50",
            "--epochs", "2", "--max-steps", "3", "--optimizer", "sgd", "--lr", "0.4",
            "--momentum", "0.85", "--weight-decay", "1.5e-3", "--bn-bias-lr-scale", "64",
            "--pct-start", "0.2", "--div-factor", "5", "--anneal", "linear",
            "--label-smoothing", "0.2", "--augment", "--crop-padding", "2", "--val-split", "40",
            "--log-every", "1"]


# the airbench94 recipe (--preset cifar10-fast's settings), shrunk: 5 steps per epoch, 2.6
# epochs = 13 steps; the whitening bias freezes after epoch 1, lookahead takes its snapshot
# at step 10 and syncs at the end of epoch 2; GELU, alternating flips, reflect padding,
# the triangle schedule
RUN_AIRBENCH = ["--preset", "cifar10-fast", "--data", "synthetic", "--synthetic-size", "200",
                "--val-split", "40", "--batch-size", "32", "--epochs", "2.6", "--lr", "0.5",
                "--whiten-bias-epochs", "1", "--lookahead-start", "1", "--log-every", "1",
                "--eval-batch-size", "40"]


# airbench94_muon's optimizer split on a ResNet: Muon (momentum, Nesterov, the filters kept
# at norm sqrt(out), Newton--Schulz) on the 4-D filters, SGD on the rest, one schedule.
# Six steps: Muon's first step does not see Nesterov or the momentum (an orthogonalised
# direction does not change when its gradient is scaled), later ones do.
RUN_MUON = RUN[:RUN.index("--optimizer")] + ["--optimizer", "muon", "--muon-lr", "0.02",
                                             "--muon-momentum", "0.9", "--schedule", "constant"] + \
    RUN[RUN.index("--optimizer") + 2:]
RUN_MUON[RUN_MUON.index("--max-steps") + 1] = "6"


def torch_losses(tmp_path, run, *extra):
    pytest.importorskip("torch", reason="PyTorch is not installed; the baseline needs "
                                        "`pip install -e .[torch]`")
    out = tmp_path / "torch"
    # this checkout's package, not an installed one (the script's folder is benchmarks/)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(SCRIPT.parents[1])] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    subprocess.run([sys.executable, str(SCRIPT), *run, *extra, "--out", str(out)],
                   check=True, env=env, capture_output=True, text=True, timeout=300)
    return json.loads((out / "metrics.json").read_text())["step_loss"]


@pytest.mark.parametrize("run, steps", [(RUN, 3), (RUN_FAST, 3), (RUN_AIRBENCH, 13),
                                        (RUN_MUON, 6)],
                         ids=["resnet8", "fastnet_whiten", "airbench94", "resnet8_muon"])
def test_torch_baseline_follows_our_run(tmp_path, capsys, run, steps):
    assert main(["train", *run, "--no-progress", "--out", str(tmp_path / "ours")]) == 0
    ours = json.loads((tmp_path / "ours" / "metrics.json").read_text())["step_loss"]
    theirs = torch_losses(tmp_path, run)
    assert len(ours) == len(theirs) == steps
    np.testing.assert_allclose(theirs, ours, rtol=2e-3)
    other = torch_losses(tmp_path, run, "--seed", "1")
    assert np.abs(np.asarray(other) - ours).max() > 1e-2  # the comparison can fail
