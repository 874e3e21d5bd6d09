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

    import minitorch_cnn.training as T             # --tta and --tta-level reach evaluate
    levels, real = [], T.evaluate
    T.evaluate = lambda *a, tta=0, **k: (levels.append(tta), real(*a, tta=tta, **k))[1]
    try:
        for flags in ([], ["--tta"], ["--tta", "--tta-level", "2"], ["--no-tta", "--tta-level", "2"]):
            assert main(["evaluate", str(out / "checkpoint.npz"), *flags]) == 0
    finally:
        T.evaluate = real
    assert levels == [0, 1, 2, 0]


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


# ------------------------------------------------- the command line from TrainConfig
def test_every_setting_is_a_flag_with_its_type_default_and_rules():
    import argparse
    from dataclasses import fields

    from minitorch_cnn.cli import build_parser
    from minitorch_cnn.training import TrainConfig
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    actions = {a.dest: a for a in train._actions}
    for f in fields(TrainConfig):
        action = actions[f.name]
        assert action.option_strings[0] == "--" + f.name.replace("_", "-")
        assert action.default is None                       # "not given"
        if f.type is bool:
            assert isinstance(action, argparse.BooleanOptionalAction)
        elif f.metadata.get("choices") is None:               # parsed to the field's type
            value = "1" if f.metadata.get("le") == 1 else "7"
            assert action.type(value) == f.type(value) and type(action.type(value)) is f.type
        else:                                  # each choice, typed as a user types it
            for choice in action.choices:
                args = train.parse_args([action.option_strings[0], str(choice)])
                assert getattr(args, f.name) == choice, (f.name, choice)
        if f.default is not None:
            assert f"(default {f.default})" in action.help, f.name
        assert ("[may change on --resume]" in action.help) == bool(f.metadata.get("resume"))


def test_a_new_setting_is_one_field():
    """The scheme on a dataclass of its own: the flag, its type, range and choices."""
    import argparse
    from dataclasses import dataclass

    from minitorch_cnn.cli import add_setting_arguments
    from minitorch_cnn.training import setting

    @dataclass
    class Settings:
        warmup_epochs: int = setting(2, "epochs of warm-up", ge=0, le=5)
        mixup: bool = setting(False, "mix pairs of images")
        colour: str = setting("rgb", "colour space", choices=("rgb", "yuv"))

    p = argparse.ArgumentParser(exit_on_error=False)
    add_setting_arguments(p, Settings)
    args = p.parse_args(["--warmup-epochs", "3", "--mixup", "--colour", "yuv"])
    assert (args.warmup_epochs, args.mixup, args.colour) == (3, True, "yuv")
    with pytest.raises(argparse.ArgumentError, match=r"--warmup-epochs: must be an integer "
                                                     r">= 0 and <= 5, got 6"):
        p.parse_args(["--warmup-epochs", "6"])


def test_evaluate_flags_come_from_the_train_settings(capsys):
    """evaluate's --model, --data, --data-dir, --val-split, --batch-size, --tta and
    --tta-level are TrainConfig's fields: the same types, choices and ranges as train's."""
    from minitorch_cnn.cli import EVALUATE_SETTINGS, build_parser
    parser = build_parser()
    args = parser.parse_args(["evaluate", "c.npz", "--batch-size", "7", "--val-split", "20",
                              "--tta-level", "2", "--no-tta", "--data", "folder"])
    assert (args.eval_batch_size, args.val_split, args.tta_level, args.tta, args.data) == \
        (7, 20, 2, False, "folder")
    assert {name: getattr(args, name) for name in EVALUATE_SETTINGS}["model"] is None
    for flags, message in ((["--val-split", "-1"], "argument --val-split: must be an integer "
                                                   ">= 0, got -1"),
                           (["--batch-size", "0"], "argument --batch-size: must be an integer "
                                                   ">= 1, got 0"),
                           (["--tta-level", "3"], "argument --tta-level: invalid choice: 3")):
        with pytest.raises(SystemExit):
            parser.parse_args(["evaluate", "c.npz", *flags])
        assert message in capsys.readouterr().err


def test_config_checks_the_same_rules():
    from minitorch_cnn.training import TrainConfig
    with pytest.raises(ValueError, match=r"TrainConfig: epochs must be a number > 0, got 0.0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match=r"TrainConfig: schedule must be one of constant, "):
        TrainConfig(schedule="linear")
    with pytest.raises(ValueError, match=r"TrainConfig: batch_size must be an integer >= 1, "
                                         r"got 6.5"):
        TrainConfig(batch_size=6.5)
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)


def test_explicit_flags_override_the_preset():
    from minitorch_cnn.cli import _given_settings, build_parser
    args = build_parser().parse_args(["train", "--preset", "cifar10", "--epochs", "2",
                                      "--no-augment"])
    given = _given_settings(args)
    assert (given["epochs"], given["augment"], given["lr"], given["data"]) == \
        (2, False, 0.1, "cifar10")


def test_resume_with_other_flags_is_refused_naming_the_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, *FAST_EVAL, "--out", str(out), "--max-steps", "1"]) == 0
    path = out / "checkpoint.npz"
    before = path.read_bytes()
    capsys.readouterr()
    assert main(["train", "--resume", str(path), "--lr", "0.01", "--epochs", "30",
                 "--model", "resnet20"]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: --resume refused" in err
    assert "--lr 0.01 (the checkpoint has 0.002)" in err and "--model resnet20" in err
    assert "--epochs" not in err.split("Only")[0]
    assert path.read_bytes() == before

    assert main(["evaluate", str(path), "--split", "val"]) == 0   # the 20 held-out images
    assert capsys.readouterr().out.startswith("Accuracy of the model on the validation images")


def test_evaluate_split_val_needs_held_out_images(tmp_path, capsys):
    from minitorch_cnn.interop import export_npz
    from minitorch_cnn.models import get_model
    path = tmp_path / "weights.npz"
    export_npz(get_model("resnet8", rng=np.random.default_rng(0)), path)
    assert main(["evaluate", str(path), "--model", "resnet8", "--split", "val"]) == 2
    assert "there is no validation split" in capsys.readouterr().err


def _metrics(directory, accs, final=None, split="validation"):
    import json
    directory.mkdir()
    history = {"step_loss": [2.3, 2.0, 1.8],
               "epochs": [{"epoch": e, "train_acc": 50.0, f"{split}_acc": a}
                          for e, a in enumerate(accs, 1)]}
    if final:
        history["final"] = final
    (directory / "metrics.json").write_text(json.dumps(history))
    return str(directory)


def test_compare_runs_table_and_figure(tmp_path, capsys):
    a = _metrics(tmp_path / "a", [61.5, 80.25, 79.0],
                 {"tta_level": 2, "validation_acc": 79.0, "validation_tta_acc": 81.5})
    b = _metrics(tmp_path / "b", [55.0, 70.0])
    png = tmp_path / "c.png"
    assert main(["compare", a, b, "--labels", "lookahead,none", "--plot", str(png)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[1] == ["lookahead", "3", "79.00", "%", "80.25", "%", "(2)", "81.50", "%",
                       "(level", "2)"]
    assert rows[2] == ["none", "2", "70.00", "%", "70.00", "%", "(2)", "-"]
    assert rows[3] == ["curves:", str(png)] and png.stat().st_size > 0


def test_compare_refuses_what_it_cannot_compare(tmp_path, capsys):
    a = _metrics(tmp_path / "a", [60.0])
    assert main(["compare", a, str(tmp_path / "missing")]) == 2
    assert "missing: cannot read" in capsys.readouterr().err
    assert main(["compare", a, "--labels", "x,y"]) == 2
    assert "--labels names 2 runs, 1 were given" in capsys.readouterr().err
    t = _metrics(tmp_path / "t", [60.0], split="test")
    assert main(["compare", a, t]) == 2
    assert "different splits (test, validation)" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["compare", str(tmp_path / "bad.json")]) == 2
    assert "no 'epochs' list" in capsys.readouterr().err
