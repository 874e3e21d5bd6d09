"""The airbench94 recipe in the trainer: fractional epochs, the whitening bias frozen after N
epochs, lookahead synced at every epoch's end, exact resume, multi-view TTA, and a run on a
CIFAR-10 copy that has no test split."""
import numpy as np
import pytest

from minitorch_cnn import data as D
from minitorch_cnn import models, nn
from minitorch_cnn.training import PRESETS, TrainConfig, Trainer, evaluate
from minitorch_cnn.training import tta_logits
from test_data import write_cifar


def small_airbench(seed=0):
    return models.FastNet(10, widths=(8, 16, 16), whiten=True, dirac=True, freeze_bn_weight=True,
                          logit_scale=1 / 9, activation="gelu", bn_eps=1e-12, bn_momentum=0.4,
                          fc_bias=False, rng=np.random.default_rng(seed))


def assert_resumes_exactly(full, make_cfg, make_model, stop_at):
    """A run of ``make_cfg()`` stopped by Ctrl-C at (epoch, step) ``stop_at``, then resumed
    from its checkpoint into a model with other initial weights, ends where the
    uninterrupted ``full`` run ended: the same step losses and state, bit for bit."""
    def stop(trainer):
        if (trainer.epoch, trainer.step) == stop_at:
            raise KeyboardInterrupt
    part = Trainer(make_cfg(), log=lambda *a: None, model=make_model(0))
    with pytest.raises(KeyboardInterrupt):
        part.fit(on_step=stop)
    resumed = Trainer(make_cfg(out=None), resume=part.checkpoint_path, log=lambda *a: None,
                      model=make_model(5))
    resumed.fit()
    assert resumed.history["step_loss"] == full.history["step_loss"]
    for k, v in full.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[k], v, err_msg=k)


def recipe(tmp_path, **kw):
    """cifar10-fast's settings on 160 synthetic images: 5 steps of 32 per epoch, 4.6 epochs."""
    cfg = {k: v for k, v in PRESETS["cifar10-fast"].items() if k not in ("data", "model")}
    cfg.update(data="synthetic", synthetic_size=160, batch_size=32, epochs=4.6, val_split=40,
               lookahead_start=1, whiten_bias_epochs=2, lr=0.3, out=str(tmp_path / "run"),
               progress=False, eval_batch_size=100, log_every=100)
    cfg.update(kw)
    return TrainConfig(**cfg)


def test_preset_is_airbench94():
    cfg = TrainConfig(**PRESETS["cifar10-fast"])
    assert (cfg.model, cfg.batch_size, cfg.epochs, cfg.momentum) == ("airbench94", 1024, 9.9, 0.85)
    k = 1024 * (1 + 1 / (1 - 0.85))                   # airbench's "kilostep scale"
    assert cfg.lr == pytest.approx(11.5 / k * 1024)    # summed loss -> mean loss: x batch
    airbench_decay = 0.0153 * 1024 / 11.5              # torch weight_decay on the summed loss
    assert cfg.weight_decay == pytest.approx(airbench_decay / 1024)
    assert cfg.lr * cfg.weight_decay == pytest.approx(0.0153 * 1024 / k)   # decay per step
    assert (cfg.schedule, 1 / cfg.div_factor, cfg.pct_start, cfg.end_factor) == \
        ("triangle", 0.2, 0.23, 0.07)
    assert (cfg.flip, cfg.crop_padding, cfg.crop_padding_mode, cfg.tta_level) == \
        ("alternate", 2, "reflect", 2)


def test_recipe_run_and_resume(tmp_path):
    stem_bias = []
    full = Trainer(recipe(tmp_path / "a"), log=lambda *a: None, model=small_airbench())
    assert full.steps_per_epoch == 3 and full.total_steps == 14      # 120 images; ceil(4.6 x 3)
    assert isinstance(full.train_loader.transform.transforms[1], D.AlternatingFlip)
    full.fit(on_step=lambda t: stem_bias.append((t.model.stem[0].bias.requires_grad,
                                                  t.model.stem[0].bias.data.copy())))
    hist = full.history
    assert len(hist["step_loss"]) == 14 and [r["epoch"] for r in hist["epochs"]] == [1, 2, 3, 4, 5]
    assert [learns for learns, _ in stem_bias] == [True] * 6 + [False] * 8   # epochs 1-2 only
    moved = [not np.array_equal(a, b) for (_, a), (_, b) in zip(stem_bias, stem_bias[1:])]
    # steps 1-6 move it; so do the end-of-epoch syncs and the average at step 10 (airbench
    # averages the whole state), but not the optimizer in epoch 3 (steps 7 -> 8 -> 9)
    assert all(moved[:5]) and not any(moved[6:8])
    la = full.optimizer                               # snapshot at step 5, average at step 10
    assert la.steps == 14 and la.ema is not None
    for k, v in la._arrays().items():                 # the run ends on the average
        np.testing.assert_array_equal(v, la.ema[k], err_msg=k)

    # interrupted at global step 8, between two averages: resumes bit for bit
    assert_resumes_exactly(full, lambda **kw: recipe(tmp_path / "b", **kw), small_airbench,
                           stop_at=(2, 2))
    lines = []
    full.log = lines.append
    acc, _ = full.final_report()
    assert lines[0].startswith("Accuracy of the model on the validation images: ")
    assert "(test-time augmentation level 2; " in lines[0]
    assert full.history["final"]["validation_tta_acc"] == acc


def test_tta_level_2_is_airbenchs_six_views(torch, rng):
    """Level 2 = 1/2 mirror-mean(x) + 1/4 mirror-mean of x shifted by (+1, +1) and by (-1, -1)
    through reflect padding (torch's F.pad as the oracle); level 1 = the mirror mean."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(5 * 6 * 3, 4, rng=rng))
    x = rng.standard_normal((7, 5, 6, 3)).astype(np.float32)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2))
    pad = torch.nn.functional.pad(xt, (1, 1, 1, 1), mode="reflect")

    def mirror_mean(t):
        a = np.ascontiguousarray(t.numpy().transpose(0, 2, 3, 1))
        return 0.5 * model(a) + 0.5 * model(np.ascontiguousarray(a[:, :, ::-1]))
    want = 0.5 * mirror_mean(xt) + 0.25 * mirror_mean(pad[:, :, 0:5, 0:6]) + \
        0.25 * mirror_mean(pad[:, :, 2:7, 2:8])
    np.testing.assert_allclose(tta_logits(model, x, 2), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tta_logits(model, x, 1), mirror_mean(xt), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(tta_logits(model, x, 0), model(x))
    loader = D.DataLoader(D.ArrayDataset(x, np.arange(7) % 4, list("abcd")), 3)
    assert evaluate(model, loader, tta=2)[0] == pytest.approx(
        100 * np.mean(want.argmax(1) == np.arange(7) % 4))
    with pytest.raises(ValueError, match="tta must be 0, 1 or 2, got 3"):
        evaluate(model, loader, tta=3)


def test_all_training_images_when_there_is_no_test_split(tmp_path):
    write_cifar(tmp_path / "c", n=20, test=False)                # 100 images, no test_batch
    cfg = TrainConfig(data="cifar10", data_dir=str(tmp_path / "c"), val_split=0, epochs=1,
                      batch_size=50, model="airbench94", out=str(tmp_path / "run"),
                      progress=False, lr=0.1, optimizer="sgd", activation="relu")
    lines = []
    tr = Trainer(cfg, log=lines.append)
    assert tr.eval_loader is None and tr.train_loader.num_samples == 100
    assert sum(isinstance(m, nn.ReLU) for m in tr.model.modules()) == 7   # --activation relu
    tr.fit()
    assert "accuracy" not in lines[-1] and "test_acc" not in tr.history["epochs"][0]
    assert tr.final_report() == (None, None)
    assert lines[-1].startswith("No evaluation: cifar10 here has no test split and --val-split "
                                "is 0, so the model trained on all 100 images")
    with pytest.raises(ValueError, match="the model resnet8 has no choice of activation"):
        Trainer(TrainConfig(**{**cfg.__dict__, "model": "resnet8"}), log=lines.append)
