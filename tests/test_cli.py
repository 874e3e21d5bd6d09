"""The command line: train -> checkpoint -> evaluate, resume, and clear errors."""
import numpy as np
import pytest

from minitorch_cnn.cli import main
from minitorch_cnn.training import load_checkpoint

SMALL = ["--model", "resnet8", "--synthetic-size", "120", "--batch-size", "50", "--epochs", "1",
         "--log-every", "1", "--no-progress"]
FAST_EVAL = ["--val-split", "20"]  # evaluate on 20 held-out images, not the 2,000 test images
VAL = ["--split", "val", *FAST_EVAL]


def test_train_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--out", str(out), "--optimizer", "sgd", "--lr", "0.02"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Epoch [1/1]. Step [1/2] Loss: ")
    assert lines[-1].startswith("Accuracy of the model on the test images: ")
    final = float(lines[-1].split(": ")[1].rstrip(" %"))
    state = load_checkpoint(out / "checkpoint.npz")
    assert state["meta"]["config"]["model"] == "resnet8" and state["meta"]["epoch"] == 1
    assert "conv1.weight" in state["model"] and "state.0.momentum_buffer" in state["optim"]
    for name in ("metrics.csv", "metrics.json", "curves.png"):
        assert (out / name).stat().st_size > 0

    assert main(["evaluate", str(out / "checkpoint.npz")]) == 0
    report = capsys.readouterr().out.splitlines()
    assert report[0] == f"Accuracy of the model on the test images: {final:.2f} %"
    assert report[1].split() == ["class", "accuracy"] and len(report) == 12


def test_resume_continues_the_same_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, *FAST_EVAL, "--out", str(out), "--max-steps", "1"]) == 0
    first = load_checkpoint(out / "checkpoint.npz")
    assert main(["train", "--resume", str(out / "checkpoint.npz"), "--no-progress"]) == 0
    assert "Resumed from" in capsys.readouterr().out
    done = load_checkpoint(out / "checkpoint.npz")
    assert first["meta"]["step"] == 1 and done["meta"]["epoch"] == 1
    assert done["meta"]["history"]["step_loss"][:1] == first["meta"]["history"]["step_loss"]


def test_plain_state_dict_needs_model(tmp_path, capsys):
    from minitorch_cnn.interop import export_npz
    from minitorch_cnn.models import get_model
    path = tmp_path / "weights.npz"
    export_npz(get_model("resnet8", rng=np.random.default_rng(0)), path)
    assert main(["evaluate", str(path)]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["evaluate", str(path), "--model", "resnet8", *VAL]) == 0


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "cifar10", "--data-dir", "/nonexistent/cifar"], "/nonexistent/cifar"),
    (["train", "--data", "folder"], "--data-dir"),
    (["evaluate", "/nonexistent/ckpt.npz"], "does not exist"),
])
def test_errors_are_clear(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_model_is_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--model", "resnet9000"])
    assert "invalid choice" in capsys.readouterr().err
