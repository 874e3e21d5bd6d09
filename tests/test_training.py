"""The trainer: checkpoints, exact resume, divergence handling, metrics, and a short real run."""
import json
import os

import numpy as np
import pytest

from minitorch_cnn import nn
from minitorch_cnn.training import (TrainConfig, Trainer, TrainingDiverged, load_checkpoint,
                                    save_checkpoint)
from minitorch_cnn.training import checkpoint as ckpt_module


def tiny_cnn(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, rng=rng), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, rng=rng), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10, rng=rng))


def config(tmp_path, **kw):
    base = dict(data="synthetic", synthetic_size=200, epochs=2, batch_size=50, lr=0.05,
                schedule="onecycle", out=str(tmp_path / "run"), progress=False, log_every=2,
                eval_batch_size=1000)
    base.update(kw)
    return TrainConfig(**base)


def quiet(*args):
    pass


def test_checkpoint_round_trip(tmp_path):
    trainer = Trainer(config(tmp_path, max_steps=3), log=quiet, model=tiny_cnn())
    trainer.fit()
    path = tmp_path / "c.npz"
    trainer.save(path)
    state = load_checkpoint(path)
    for key, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(state["model"][key], value)
    for key, value in trainer.optimizer.state_dict().items():
        np.testing.assert_array_equal(state["optim"][key], value)
    assert state["meta"]["step"] == 3 and state["meta"]["epoch"] == 0
    assert state["meta"]["config"]["synthetic_size"] == 200
    assert len(state["meta"]["history"]["step_loss"]) == 3


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model = tiny_cnn()
    path = tmp_path / "c.npz"
    save_checkpoint(path, model, meta={"n": 1})
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, tiny_cnn(seed=1), meta={"n": 2})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.npz"]  # no temporary file left behind
    assert load_checkpoint(path)["meta"] == {"n": 1}


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_checkpoint(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        load_checkpoint(bad)


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    full = Trainer(config(tmp_path / "a"), log=quiet, model=tiny_cnn())
    full.fit()

    def interrupt_mid_epoch_two(trainer):
        if trainer.epoch == 1 and trainer.step == 2:
            raise KeyboardInterrupt

    part = Trainer(config(tmp_path / "b"), log=quiet, model=tiny_cnn())
    with pytest.raises(KeyboardInterrupt):
        part.fit(on_step=interrupt_mid_epoch_two)
    assert len(part.history["step_loss"]) == 6  # 4 steps of epoch 1 and 2 of epoch 2

    resumed = Trainer(config(tmp_path / "b", out=None), resume=part.checkpoint_path, log=quiet,
                      model=tiny_cnn(seed=123))  # different init: everything must come from disk
    resumed.fit()
    assert resumed.history["step_loss"] == full.history["step_loss"]  # bit-identical curve
    for key, value in full.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[key], value)
    assert resumed.history["epochs"][-1]["test_acc"] == full.history["epochs"][-1]["test_acc"]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    trainer = Trainer(config(tmp_path, epochs=3), log=quiet, model=tiny_cnn())
    calls = {"n": 0}
    forward = trainer.criterion.forward

    def poisoned(logits, targets):
        calls["n"] += 1
        return float("nan") if calls["n"] == 6 else forward(logits, targets)

    trainer.criterion.forward = poisoned
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 2 .*lower learning rate"):
        trainer.fit()
    saved = load_checkpoint(trainer.checkpoint_path)
    assert saved["meta"]["epoch"] == 1 and saved["meta"]["step"] == 0  # the end of epoch 1


def test_metrics_files_and_seed_log_format(tmp_path):
    lines = []
    trainer = Trainer(config(tmp_path, epochs=1), log=lines.append, model=tiny_cnn())
    trainer.fit()
    acc, per_class = trainer.final_report()
    assert "Epoch [1/1]. Step [2/4] Loss: " in lines[0]
    assert lines[-1] == f"Accuracy of the model on the test images: {acc:.2f} %"
    assert per_class.shape == (10,)
    out = tmp_path / "run"
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,train_acc,test_acc") and len(rows) == 2
    history = json.loads((out / "metrics.json").read_text())
    assert len(history["step_loss"]) == 4
    assert (out / "curves.png").stat().st_size > 1000


@pytest.mark.slow
def test_short_training_learns_the_synthetic_shapes(tmp_path):
    """A tiny CNN, 1,000 images, 4 epochs: far above the 10 % of chance (measured 41.8 %)."""
    cfg = config(tmp_path, synthetic_size=1000, epochs=4, lr=0.1, log_every=100)
    trainer = Trainer(cfg, log=quiet, model=tiny_cnn())
    trainer.fit()
    acc, _ = trainer.final_report()
    assert acc >= 35.0, acc


def test_evaluate_with_test_time_flip():
    """tta=True classifies by the summed logits of each image and its mirror image."""
    from minitorch_cnn import data as D
    from minitorch_cnn.training import evaluate
    rng = np.random.default_rng(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4 * 5 * 3, 3, rng=rng))
    x = rng.standard_normal((60, 4, 5, 3), dtype=np.float32)  # the loader gives float32
    y = rng.integers(0, 3, 60)
    loader = D.DataLoader(D.ArrayDataset(x, y, ["a", "b", "c"]), 25)
    want = {False: model(x), True: model(x) + model(x[:, :, ::-1])}
    for tta, logits in want.items():
        acc, per_class, confusion = evaluate(model, loader, tta=tta)
        assert acc == pytest.approx(100 * np.mean(logits.argmax(1) == y))
        assert confusion.sum() == 60
    assert evaluate(model, loader, tta=True)[0] != evaluate(model, loader)[0]  # the flip matters


def test_crop_padding_reaches_the_transform(tmp_path):
    from minitorch_cnn import data as D
    from minitorch_cnn.training.recipe import build_transform
    cfg = config(tmp_path, augment=True, crop_padding=2)
    train_tf, _ = build_transform(cfg, D.synthetic(train=True, n=10))
    crops = [t for t in train_tf.transforms if isinstance(t, D.RandomCrop)]
    assert [c.padding for c in crops] == [2]


def test_recipe_prepares_the_model_and_shapes_the_schedule(tmp_path):
    """bn_bias_lr_scale reaches every BatchNorm bias (and nothing else), the whitening stem is
    set from the training images, and pct_start / div_factor / anneal shape the one-cycle."""
    from minitorch_cnn import models
    cfg = config(tmp_path, model="fastnet_whiten", bn_bias_lr_scale=64.0, pct_start=0.2,
                 div_factor=5.0, anneal="linear", lr=1.0, epochs=1, batch_size=10)
    untouched = models.get_model("fastnet_whiten", rng=np.random.default_rng(cfg.seed))
    tr = Trainer(cfg, log=quiet)
    params = dict(tr.model.named_parameters())
    bn_biases = {f"{k}.bias" for k, m in tr.model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert len(bn_biases) == 6
    assert {k: p.lr_scale for k, p in params.items() if p.lr_scale != 1.0} == \
        dict.fromkeys(bn_biases, 64.0)
    assert not np.allclose(params["stem.0.weight"].data, untouched.stem[0].weight.data)
    x = np.concatenate([x for x, _ in tr.eval_loader.__class__(
        tr.train_loader.dataset, 100, transform=tr.eval_loader.transform)])  # as evaluated
    y = (tr.model.stem[0](x)[..., :12] - params["stem.0.bias"].data[:12]).reshape(-1, 12)
    np.testing.assert_allclose(y.T.astype(np.float64) @ y / len(y), np.eye(12), atol=0.05)
    assert tr.steps_per_epoch == 20                        # 200 images / 10
    lrs = [tr.scheduler.lr_at(t) for t in range(20)]       # warm-up ends at step 0.2*20 - 1 = 3
    np.testing.assert_allclose(lrs[:4], [0.2, 0.2 + 0.8 / 3, 0.2 + 1.6 / 3, 1.0])
    np.testing.assert_allclose(np.diff(lrs[3:]), (0.2e-4 - 1.0) / 16)   # straight down to lr/5e4
