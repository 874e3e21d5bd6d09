"""A checkpoint written before training/ was split by job still resumes.

tests/data/checkpoint_main_2785dea.npz was written by the code of commit 2785dea (the
trainer in one file) with tests/data/write_checkpoint.py: a small CNN, SGD with
Lookahead, stopped by --max-steps 11 at epoch 2, step 3 of 8.
"""
from dataclasses import fields
from pathlib import Path

import numpy as np

from minitorch_cnn import nn
from minitorch_cnn.training import TrainConfig, Trainer, load_checkpoint

FIXTURE = Path(__file__).parent / "data" / "checkpoint_main_2785dea.npz"


def fixture_cnn(seed):
    """The network of write_checkpoint.py; ``seed`` other than 0: other initial weights."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1, rng=rng), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10, rng=rng))


def test_a_checkpoint_of_the_old_layout_resumes_with_all_its_state(tmp_path):
    old = load_checkpoint(FIXTURE)
    lines = []
    trainer = Trainer({"out": str(tmp_path / "run"), "max_steps": 0}, resume=str(FIXTURE),
                      log=lines.append, model=fixture_cnn(seed=7))  # all must come from the file
    assert (trainer.epoch, trainer.step) == (1, 3)
    assert trainer.cfg.lookahead and trainer.cfg.lr == 0.05 and trainer.cfg.max_steps == 0

    trainer.save(str(tmp_path / "again.npz"))      # written back: the same entries and values
    again = load_checkpoint(tmp_path / "again.npz")
    for section in ("model", "optim", "sched"):
        assert sorted(again[section]) == sorted(old[section]), section
        for key, value in old[section].items():
            np.testing.assert_array_equal(again[section][key], value, err_msg=key)
    for meta in (again["meta"], old["meta"]):
        del meta["config"]["out"], meta["config"]["max_steps"]
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    for name in set(again["meta"]["config"]) - set(old["meta"]["config"]):  # settings added
        assert again["meta"]["config"].pop(name) == defaults[name], name    # since: defaults
    assert again["meta"] == old["meta"]

    trainer.fit()                                   # then it trains to the end of epoch 2
    assert (trainer.epoch, trainer.step) == (2, 0)
    assert len(trainer.history["step_loss"]) == 16 and len(trainer.history["epochs"]) == 2
    assert trainer.history["step_loss"][:11] == old["meta"]["history"]["step_loss"]
    assert np.isfinite(trainer.history["step_loss"]).all()
    assert lines[0].startswith(f"Resumed from {FIXTURE} at epoch 2, step 3")
