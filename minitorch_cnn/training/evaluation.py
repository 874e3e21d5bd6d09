"""Evaluation: accuracy, per-class accuracy and the confusion matrix of a model over a
loader, with test-time augmentation (TTA); and a checkpoint's evaluation as the
``evaluate`` command runs it.
"""
from collections import namedtuple

import numpy as np

from .. import data as D
from .checkpoint import load_checkpoint
from .recipe import build_model, build_transform, has_test_split, load_datasets
from .settings import TrainConfig

def tta_level(cfg):
    """The test-time augmentation of a config's final evaluation: 0 (none), 1 or 2."""
    return cfg.tta_level if cfg.tta else 0


def tta_logits(model, x, level):
    """Logits of a batch with test-time augmentation ``level`` (airbench's three):

    0: ``model(x)``; 1: the mean over x and its left-right mirror image, the flip
    training taught the network to ignore; 2: half of level 1, plus half of the
    mean of level 1 on x shifted one pixel down-right and one pixel up-left
    (reflect padding), 6 views in all.
    """
    if level == 0:
        return model(x)
    mirror = 0.5 * model(x) + 0.5 * model(np.ascontiguousarray(x[:, :, ::-1]))  # NHWC: W axis 2
    if level == 1:
        return mirror
    h, w = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    shifted = [tta_logits(model, np.ascontiguousarray(padded[:, i:i + h, i:i + w]), 1)
               for i in (0, 2)]
    return 0.5 * mirror + 0.25 * (shifted[0] + shifted[1])


def evaluate(model, loader, tta=0):
    """Accuracy (%), per-class accuracy (%) and the confusion matrix over a loader (eval mode).

    ``tta``: the test-time augmentation level of :func:`tta_logits` (0, 1, 2;
    ``True`` means 1, the mirror image).
    """
    level = int(tta)
    if level not in (0, 1, 2):
        raise ValueError(f"evaluate: tta must be 0, 1 or 2, got {tta!r}")
    was_training = model.training
    model.eval()
    k = len(loader.dataset.classes)
    confusion = np.zeros((k, k), dtype=np.int64)
    for x, y in loader:
        pred = tta_logits(model, x, level).argmax(axis=1)
        np.add.at(confusion, (y, pred), 1)
    model.train(was_training)
    per_class = 100.0 * np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
    accuracy = 100.0 * np.trace(confusion) / max(confusion.sum(), 1)
    return float(accuracy), per_class, confusion

Evaluation = namedtuple("Evaluation", "model loader split classes tta")
Evaluation.__doc__ = """What :func:`checkpoint_evaluation` sets up: the model with the
checkpoint's weights, the loader of the evaluation images, the split's name ("test" or
"validation"), the class names and the TTA level; run it with
``evaluate(e.model, e.loader, tta=e.tta)``."""


def checkpoint_evaluation(path, split=None, batch_size=500, **settings):
    """Set up the evaluation of the checkpoint at ``path`` (written by ``train``, or a plain
    state_dict .npz given ``model=``): its model, on the images of ``split`` ("test" or
    "val"; default: the data set's test split where it has one).

    ``settings``: TrainConfig settings that replace the checkpoint's (``model``, ``data``,
    ``data_dir``, ``val_split``, ``tta``, ``tta_level``); a value None keeps the
    checkpoint's. A ValueError or OSError says what is wrong.
    """
    state = load_checkpoint(path)
    cfg = TrainConfig.from_dict(state["meta"].get("config", {}))
    for name, value in settings.items():
        if value is not None:
            setattr(cfg, name, value)
    if "config" not in state["meta"] and settings.get("model") is None:
        raise ValueError(f"{path} is a plain state_dict: say which model with --model")
    split = split or ("test" if has_test_split(cfg) else "val")
    train, evalset, split_name = load_datasets(cfg, split)
    model = build_model(cfg, len(train.classes))
    model.load_state_dict(state["model"])
    loader = D.DataLoader(evalset, batch_size, transform=build_transform(cfg, train)[1])
    return Evaluation(model, loader, split_name, train.classes, tta_level(cfg))
