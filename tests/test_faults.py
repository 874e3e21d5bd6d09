"""Fault injection: a run survives SIGKILL (also in the middle of a checkpoint write), a
damaged newest checkpoint, a full disk, a bad --resume and damaged data, each with a clear
error naming the file -- and a resumed run equals an uninterrupted one bit for bit.

The training runs are subprocesses of ``DRIVER`` (a tiny CNN, 80 synthetic training images,
2 epochs of 8 steps, a checkpoint every 3 steps: about 2 s each), killed with SIGKILL from
outside at random moments, or from inside at a named point of a checkpoint write through
``MINITORCH_CNN_FAULT`` (see training/checkpoint.py).
"""
import glob
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from minitorch_cnn import nn
from minitorch_cnn.cli import main
from minitorch_cnn.training import (FAULT_ENV, CheckpointError, TrainConfig, Trainer,
                                    load_checkpoint, previous_path)
from minitorch_cnn.training import checkpoint as ckpt_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SETTINGS = dict(synthetic_size=100, val_split=20, batch_size=10, epochs=2, lr=0.05,
                optimizer="sgd", log_every=1, checkpoint_every=3, progress=False,
                eval_batch_size=100)
STEPS = 16  # 80 training images / 10, 2 epochs

DRIVER = textwrap.dedent("""
    import sys
    import numpy as np
    from minitorch_cnn import nn
    from minitorch_cnn.training import TrainConfig, Trainer, trainer

    trainer.write_metrics = lambda *args: None  # no curves.png: half the time of a run

    out, resume = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1, rng=rng), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10, rng=rng))
    settings = dict(SETTINGS, out=out)
    cfg = settings if resume else TrainConfig(**settings)
    Trainer(cfg, resume=resume, model=model).fit()
    print("DONE", flush=True)
""").replace("SETTINGS", repr(SETTINGS))


def tiny_cnn(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1, rng=rng), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10, rng=rng))


def _env(fault=None):
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    env["MPLBACKEND"] = "Agg"
    if fault:
        env[FAULT_ENV] = fault
    return env


def _command(out, resume=None):
    return [sys.executable, "-c", DRIVER, str(out)] + ([str(resume)] if resume else [])


def config(tmp_path, **kw):
    return TrainConfig(**{**SETTINGS, "out": str(tmp_path / "run"), **kw})


def quiet(line):
    pass


def run_driver(out, resume=None, fault=None):
    return subprocess.run(_command(out, resume), env=_env(fault), cwd=ROOT, text=True,
                          capture_output=True, timeout=300)


def checkpoints(out):
    return sorted(glob.glob(os.path.join(out, "*.npz")))


def assert_every_checkpoint_readable(out):
    for path in checkpoints(out):
        load_checkpoint(path)  # raises ValueError naming the file if it is not


def resume_path(out):
    path = os.path.join(out, "checkpoint.npz")
    return path if os.path.exists(path) or os.path.exists(previous_path(path)) else None


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its final state and loss curve."""
    out = tmp_path_factory.mktemp("reference")
    done = run_driver(out)
    assert done.returncode == 0 and "DONE" in done.stdout, done.stderr
    state = load_checkpoint(out / "checkpoint.npz")
    assert len(state["meta"]["history"]["step_loss"]) == STEPS
    return state


def assert_same_run(state, reference):
    assert state["meta"]["epoch"] == 2 and state["meta"]["step"] == 0
    assert state["meta"]["history"]["step_loss"] == reference["meta"]["history"]["step_loss"]
    for section in ("model", "optim", "sched"):
        assert state[section].keys() == reference[section].keys()
        for key, value in reference[section].items():
            np.testing.assert_array_equal(state[section][key], value, err_msg=key)
    for got, want in zip(state["meta"]["history"]["epochs"],
                         reference["meta"]["history"]["epochs"]):
        for key in ("train_loss", "train_acc", "validation_acc", "lr"):
            assert got[key] == want[key], key


# ------------------------------------------------------------ killed inside a write
CHAIN = [
    # (fault of this process, where the next process resumes); the writes of a process are
    # counted from 1: at steps 3, 6, 8 (the end of epoch 1), 9, 12, 15, 16 of a whole run
    ("kill@written:2", "epoch 1, step 3"),     # the 2nd write (step 6) complete in its
                                               # temporary file, nothing renamed
    ("kill@rotated:2", "epoch 1, step 6"),     # from step 3: the 2nd write (step 8) killed
                                               # with the old file also .prev, the new not in
    ("truncate@replaced:2", "epoch 2, step 0"),  # from step 6: the 2nd write (step 9) in
                                               # place, cut in half, killed: falls back
    ("kill@replaced:2", "epoch 2, step 4"),    # from step 8: the 2nd write (step 12) in place
    (None, None),                              # from step 12 to the end
]


def test_killed_during_checkpoint_writes_resumes_bit_for_bit(tmp_path, reference):
    """One run killed four times, at each point of a checkpoint write, resumed each time;
    the finished run equals the uninterrupted one, and only the deliberately truncated
    file is ever unreadable."""
    out, resume = tmp_path / "run", None
    newest = out / "checkpoint.npz"
    for fault, resumed_at in CHAIN:
        done = run_driver(out, resume=resume, fault=fault)
        if fault is None:
            assert done.returncode == 0 and "DONE" in done.stdout, done.stderr
            break
        assert done.returncode == -signal.SIGKILL, (fault, done.stderr)
        if fault.startswith("truncate"):
            with pytest.raises(ValueError, match="checkpoint.npz.* is not a readable .npz"):
                load_checkpoint(newest)
            load_checkpoint(previous_path(newest))
        else:
            assert_every_checkpoint_readable(out)
        resume = newest
        position = load_checkpoint(newest if not fault.startswith("truncate") else
                                   previous_path(newest))["meta"]
        assert f"epoch {position['epoch'] + 1}, step {position['step']}" == resumed_at, fault
    assert "warning:" not in done.stdout
    assert not glob.glob(str(out / "*.tmp"))   # the killed writes' temporary files are gone
    assert_same_run(load_checkpoint(newest), reference)


def test_resume_falls_back_to_the_previous_checkpoint_with_a_warning(tmp_path):
    trainer = Trainer(config(tmp_path, max_steps=7), log=quiet, model=tiny_cnn())
    trainer.fit()                              # checkpoints at steps 3, 6 and 7
    path = trainer.checkpoint_path
    with open(path, "r+b") as f:
        f.truncate(100)
    lines = []
    resumed = Trainer({"max_steps": 0}, resume=path, log=lines.append, model=tiny_cnn())
    assert resumed.step == 6
    assert lines[0].startswith(f"warning: checkpoint {path!r} is not a readable .npz archive")
    assert lines[0].endswith(f"resuming from the previous checkpoint {previous_path(path)} "
                             "instead")


# ------------------------------------------------------------ killed at random moments
def test_sigkill_at_random_moments_until_the_run_finishes(tmp_path, reference):
    """Kill the run after a random number of steps plus up to 40 ms, again and again,
    resuming each time: no checkpoint on disk is ever unreadable, and the run that
    finally finishes equals the uninterrupted one."""
    out, rnd, kills = tmp_path / "run", random.Random(16), 0
    for attempt in range(4):                  # the 4th is left to finish
        proc = subprocess.Popen(_command(out, resume_path(out)), env=_env(), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        target, seen = rnd.randint(1, 8), 0
        for line in proc.stdout:
            seen += line.startswith("Epoch [")
            if seen >= target or line.startswith("DONE"):
                break
        if attempt < 3:
            try:
                proc.wait(timeout=rnd.uniform(0, 0.04))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode in (0, -signal.SIGKILL), stderr
        assert_every_checkpoint_readable(out)
        if proc.returncode == 0:
            break
    assert proc.returncode == 0 and kills >= 1
    assert_same_run(load_checkpoint(out / "checkpoint.npz"), reference)


# ---------------------------------------------------------------------- a full disk
@pytest.fixture
def fault(monkeypatch):
    """Set MINITORCH_CNN_FAULT for this process, with fresh counters."""
    monkeypatch.setattr(ckpt_module, "_fault_counts", {})

    def set_fault(spec):
        monkeypatch.setenv(FAULT_ENV, spec)
    return set_fault


def test_disk_full_stops_with_a_clear_error_and_keeps_the_last_checkpoint(tmp_path, fault):
    trainer = Trainer(config(tmp_path), log=quiet, model=tiny_cnn())
    fault("enospc@written:3")                 # the 3rd write: step 8, the end of epoch 1
    with pytest.raises(CheckpointError) as info:
        trainer.fit()
    path = trainer.checkpoint_path
    message = str(info.value)
    assert f"could not write the checkpoint {path}: No space left on device" in message
    assert f"Unchanged on disk: {path}, {previous_path(path)}" in message
    assert f"--resume {path}" in message
    assert load_checkpoint(path)["meta"]["step"] == 6 and \
        load_checkpoint(previous_path(path))["meta"]["step"] == 3
    assert sorted(os.listdir(tmp_path / "run")) == ["checkpoint.npz", "checkpoint.prev.npz"]


def test_disk_full_inside_savez_leaves_no_temporary_file(tmp_path, monkeypatch):
    trainer = Trainer(config(tmp_path, checkpoint_every=0, max_steps=2), log=quiet,
                      model=tiny_cnn())
    trainer.fit()
    before = open(trainer.checkpoint_path, "rb").read()

    def half_then_enospc(f, **arrays):
        f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt_module.np, "savez", half_then_enospc)
    with pytest.raises(CheckpointError, match="No space left on device"):
        trainer.save()
    assert open(trainer.checkpoint_path, "rb").read() == before
    assert os.listdir(tmp_path / "run") == ["checkpoint.npz"]


def test_out_dir_is_checked_before_the_first_step(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    trainer = Trainer(config(tmp_path, out=str(blocker / "run")), log=quiet, model=tiny_cnn())
    with pytest.raises(CheckpointError, match=r"--out .*a_file/run: cannot write there"):
        trainer.fit()
    assert trainer.step == 0

    trainer = Trainer(config(tmp_path), log=quiet, model=tiny_cnn())
    need = 3 * trainer.checkpoint_bytes()
    assert need > 3 * sum(p.data.nbytes for p in trainer.model.parameters())

    class Usage:
        free = need - 1
    monkeypatch.setattr(ckpt_module.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(CheckpointError, match=r"MiB free, but checkpoints need about .* MiB "
                                              r"more \(three of"):
        trainer.fit()
    assert trainer.step == 0
    Usage.free = need
    trainer.fit()                             # exactly enough is enough


def test_cli_reports_a_checkpoint_error_with_status_1(monkeypatch, capsys):
    from minitorch_cnn import cli

    def no_room(self):
        raise CheckpointError("could not write the checkpoint X: No space left on device")
    monkeypatch.setattr(Trainer, "fit", no_room)
    monkeypatch.setattr(Trainer, "__init__", lambda self, *a, **k: None)
    assert cli.main(["train", "--out", "somewhere"]) == 1
    assert "error: could not write the checkpoint X: No space left" in capsys.readouterr().err


# -------------------------------------------------------------------- bad --resume
@pytest.fixture
def stopped_run(tmp_path):
    """A run stopped at step 3 (its checkpoint) and the checkpoint's bytes."""
    trainer = Trainer(config(tmp_path, max_steps=3), log=quiet, model=tiny_cnn())
    trainer.fit()
    path = trainer.checkpoint_path
    return path, open(path, "rb").read()


def _refused(path, given, match, model=None):
    with pytest.raises(ValueError, match=match) as info:
        Trainer(given, resume=path, log=quiet, model=model or tiny_cnn())
    assert path in str(info.value)
    return str(info.value)


def test_resume_with_conflicting_settings_lists_every_difference(stopped_run):
    path, before = stopped_run
    message = _refused(path, dict(lr=0.01, optimizer="adam", epochs=30), "--resume refused")
    assert "--lr 0.01 (the checkpoint has 0.05)" in message
    assert "--optimizer adam (the checkpoint has sgd)" in message
    assert "--epochs" not in message.split("Only")[0]        # --epochs may change
    assert "Only --data-dir, --epochs, --out, --log-every, --max-steps" in message
    assert open(path, "rb").read() == before                  # nothing overwritten
    _refused(path, dict(model="resnet20"), r"--model resnet20 \(the checkpoint has resnet50")
    _refused(path, dict(data="cifar10"), r"--data cifar10 \(the checkpoint has synthetic\)")
    assert open(path, "rb").read() == before


def test_resume_may_change_what_does_not_change_results(stopped_run, tmp_path):
    path, _ = stopped_run
    trainer = Trainer(dict(epochs=3, log_every=5, checkpoint_every=0, progress=False,
                           out=str(tmp_path / "elsewhere"), eval_batch_size=7, compile=False),
                      resume=path, log=quiet, model=tiny_cnn())
    assert (trainer.cfg.epochs, trainer.cfg.lr, trainer.step) == (3, 0.05, 3)
    assert trainer.checkpoint_path == str(tmp_path / "elsewhere" / "checkpoint.npz")


def test_resume_cannot_shrink_below_the_epochs_done(tmp_path):
    trainer = Trainer(config(tmp_path, max_steps=9), log=quiet, model=tiny_cnn())
    trainer.fit()                                             # 1 epoch and 1 step done
    assert (trainer.epoch, trainer.step) == (1, 1)
    _refused(trainer.checkpoint_path, {"epochs": 1}, r"--epochs 1 \(the checkpoint has "
             r"already trained 1 epochs and part of the next\)")
    assert Trainer({"epochs": 2}, resume=trainer.checkpoint_path, log=quiet,
                   model=tiny_cnn()).step == 1


def test_resume_with_another_architecture_names_the_file(stopped_run):
    path, before = stopped_run
    other = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(5, 10))
    message = _refused(path, {}, "cannot resume from this checkpoint", model=other)
    assert "missing keys" in message and "mis-shaped keys" in message
    assert open(path, "rb").read() == before


def test_resume_from_a_truncated_checkpoint_names_the_file(stopped_run, capsys):
    path, before = stopped_run
    with open(path, "r+b") as f:
        f.truncate(len(before) // 3)
    _refused(path, {}, "is not a readable .npz archive")
    assert main(["train", "--resume", path]) == 2
    err = capsys.readouterr().err
    assert path in err and "not a readable .npz archive" in err
    assert os.path.getsize(path) == len(before) // 3        # left as it was


def rewrite(path, change):
    """Rewrite the checkpoint at ``path`` after ``change(arrays, meta)``."""
    state = load_checkpoint(path)
    arrays = {f"{s}/{k}": v for s in ("model", "optim", "sched") for k, v in state[s].items()}
    change(arrays, state["meta"])
    ckpt_module.atomic_savez(path, {**arrays, "meta.json": np.array(json.dumps(state["meta"]))})


@pytest.mark.parametrize("key, cut, message", [
    ("model/0.weight", np.s_[:2], r"0.weight: expected \(4, 3, 3, 3\), got \(2, 3, 3, 3\)"),
    ("optim/state.4.momentum_buffer", np.s_[:, :1],
     r"state.4.momentum_buffer: expected \(8, 4, 3, 3\), got \(8, 1, 3, 3\)"),
])
def test_resume_from_a_checkpoint_with_wrong_shapes_names_the_key(stopped_run, key, cut,
                                                                  message):
    path, _ = stopped_run
    rewrite(path, lambda arrays, meta: arrays.update({key: arrays[key][cut]}))
    _refused(path, {}, "cannot resume from this checkpoint: .*" + message)


def test_resume_with_an_out_of_range_position_names_the_file(stopped_run):
    path, _ = stopped_run
    rewrite(path, lambda arrays, meta: meta.update(step=99))
    _refused(path, {}, "position epoch 0, step 99 is outside a run of 8 steps per epoch")


def test_cli_refuses_a_bad_value_naming_the_flag(capsys):
    for argv, message in [(["--epochs", "-1"], "argument --epochs: must be a number > 0, "
                                                "got -1.0"),
                          (["--lr", "nan"], "argument --lr: must be a number >= 0, got nan"),
                          (["--pct-start", "1.5"], "argument --pct-start: must be a number >= 0 "
                                                    "and <= 1, got 1.5"),
                          (["--batch-size", "ten"], "argument --batch-size: must be an integer "
                                                     ">= 1, got 'ten'"),
                          (["--optimizer", "rmsprop"], "argument --optimizer: invalid choice")]:
        with pytest.raises(SystemExit) as info:
            main(["train", *argv])
        assert info.value.code == 2
        assert message in capsys.readouterr().err


# ---------------------------------------------------------------- the data set moved
def _image_folder(root, n=12, seed=0):
    from PIL import Image
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root / ("ab"[i % 2])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            folder / f"{i}.png")
    return root


def test_resume_accepts_the_same_data_moved_and_refuses_other_data(tmp_path):
    first = _image_folder(tmp_path / "images")
    cfg = config(tmp_path, data="folder", data_dir=str(first), val_split=4, batch_size=4,
                 max_steps=1)
    Trainer(cfg, log=quiet, model=tiny_cnn()).fit()
    path = cfg.out + "/checkpoint.npz"
    moved = tmp_path / "moved"
    os.rename(first, moved)
    trainer = Trainer({"data_dir": str(moved), "max_steps": 0}, resume=path, log=quiet,
                      model=tiny_cnn())
    assert trainer.step == 1 and trainer.cfg.data_dir == str(moved)
    _image_folder(moved, seed=1)             # same names and size, other pixels
    message = _refused(path, {"data_dir": str(moved)}, "is not the data set this run was "
                                                        "trained on")
    assert "8 training images, checksum" in message


# ------------------------------------------------------------------- damaged data
def _cifar_folder(root, n=10, **changes):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, n))}
        batch.update(changes.get(name, {}))
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return folder


@pytest.mark.parametrize("damage, message", [
    ("truncated", r"data_batch_3: cannot be read as a CIFAR-10 batch, the file is truncated"),
    ("shape", r"data_batch_2: b'data' has shape \(10, 3000\)"),
    ("labels", r"data_batch_4: labels must be integers in 0..9, got .* range \[0, 10\]"),
])
def test_damaged_cifar10_batch_names_the_file(tmp_path, capsys, damage, message):
    import re
    changes = {"shape": {"data_batch_2": {b"data": np.zeros((10, 3000), np.uint8)}},
               "labels": {"data_batch_4": {b"labels": [10] + [0] * 9}}}.get(damage, {})
    folder = _cifar_folder(tmp_path, **changes)
    if damage == "truncated":
        raw = (folder / "data_batch_3").read_bytes()
        (folder / "data_batch_3").write_bytes(raw[:len(raw) // 2])
    assert main(["train", "--data", "cifar10", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert str(folder) in err


def test_unreadable_image_in_a_folder_names_the_file(tmp_path, capsys):
    root = _image_folder(tmp_path / "images")
    (root / "b" / "7.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 10)
    assert main(["train", "--data", "folder", "--data-dir", str(root), "--val-split", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{root / 'b' / '7.png'}: cannot read this image" in err
