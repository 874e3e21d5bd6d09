"""The training loop: data -> model -> loss -> backward -> optimizer, and nothing else.

One step, written out::

    logits = model(x)                     # forward, NHWC batch in
    loss = criterion(logits, y)
    model.backward(criterion.backward())  # explicit backward, grads accumulate
    optimizer.step(); scheduler.step()    # update, then the per-step schedule
    model.zero_grad()

Everything a run needs to continue exactly where it stopped -- weights,
BatchNorm statistics, optimizer and schedule state, the epoch and step, the
metrics so far -- goes into one checkpoint (see ``checkpoint.py``). The data
order and augmentation of a step depend only on (seed, epoch, step), so a
resumed run sees the same batches as an uninterrupted one and its loss curve
is identical.
"""
import hashlib
import math
import operator
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from .. import data as D
from .. import models, nn, optim
from ..fast import compile as compile_model
from .checkpoint import load_for_resume, previous_path, save_checkpoint, temporary_prefix


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class CheckpointError(RuntimeError):
    """A checkpoint could not be written (a full disk, a folder that is not writable)."""


def setting(default, help, **rules):
    """One ``TrainConfig`` field: its default, the help of its flag, and its rules.

    ``rules`` (all optional, stored in the field's ``metadata``):

    * ``choices``: the allowed values, or a function returning them;
    * ``ge`` / ``gt`` / ``le`` / ``lt``: the range of a number (>=, >, <=, <);
    * ``optional=True``: ``None`` is allowed too (a default of ``None`` implies it);
    * ``resume=True``: the setting may change when a run is resumed (``--resume``),
      because it does not change the run's results; every other setting must
      equal the checkpoint's.
    """
    return field(default=default, metadata=dict(help=help, **rules))


def _describe_rules(meta, kind):
    """'an integer >= 1', 'a number in [0, 1]', 'one of sgd, adam' for an error message."""
    if meta.get("choices") is not None:
        return "one of " + ", ".join(map(str, setting_choices(meta)))
    noun = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[kind]
    bounds = [f"{op} {meta[key]:g}" for key, op in
              (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")) if key in meta]
    return noun + (" " + " and ".join(bounds) if bounds else "")


def setting_choices(meta):
    choices = meta.get("choices")
    return tuple(choices()) if callable(choices) else tuple(choices)


def check_setting(f, value):
    """``value`` for the TrainConfig field ``f``, normalised (an int given for a float
    becomes a float); a ValueError naming the setting and the valid values otherwise."""
    meta, kind = f.metadata, f.type
    if value is None and (f.default is None or meta.get("optional")):
        return None
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value, ok = float(value), True
    if kind is int and isinstance(value, np.integer):
        value, ok = int(value), True
    if ok and meta.get("choices") is not None:
        ok = value in setting_choices(meta)
    if ok and kind in (int, float):
        ok = all(test(value, meta[key]) for key, test in
                 (("ge", operator.ge), ("gt", operator.gt), ("le", operator.le),
                  ("lt", operator.lt)) if key in meta)
        ok = ok and math.isfinite(value)
    if not ok:
        raise ValueError(f"{f.name} must be {_describe_rules(meta, kind)}, got {value!r}")
    return value


@dataclass
class TrainConfig:
    """Every setting of a run; the command line's ``train`` flags are made from it.

    The defaults are the README's main job: the seed's model on 10,000
    synthetic images, Adam with a one-cycle schedule, 3 epochs, no
    augmentation (the shapes already sit at random places) -- about 75 % test
    accuracy in under 5 minutes on 2 cores. ``PRESETS`` hold recipes for real data.

    **Adding a setting is one edit**: a field here, ``name: type = setting(default,
    help, **rules)`` (see :func:`setting` for the rules: ``choices``, ``ge``/``gt``/
    ``le``/``lt``, ``optional``, ``resume``). The command line derives the flag
    ``--name-with-dashes`` from it (``bool`` fields get ``--x/--no-x``), its type,
    help and default, and checks the value's range; ``TrainConfig(...)`` checks the
    same rules, so a bad value is refused with the setting's name whichever way it
    comes. Then use ``cfg.name`` where it matters.
    """
    model: str = setting("resnet50_layer4", "a model of the zoo (see the summary command)",
                         choices=lambda: tuple(models.MODELS))
    data: str = setting("synthetic", "the data set", choices=("synthetic", "cifar10", "folder"))
    data_dir: str = setting(None, "CIFAR-10 root (cifar-10-batches-py/ or the .tar.gz) or an "
                            "image folder root/<class>/*.png; on --resume, the same data set "
                            "moved elsewhere (checked by its size and a checksum of its first "
                            "images)", resume=True)
    epochs: float = setting(3, "epochs to train; a fraction trains part of the last one (9.9: "
                            "ceil(9.9 x steps per epoch) steps in all); on --resume, more "
                            "epochs extend a run (the schedule is recomputed for the new "
                            "length)", gt=0, resume=True)
    batch_size: int = setting(64, "training images per step", ge=1)
    lr: float = setting(2e-3, "(peak) learning rate", ge=0)
    optimizer: str = setting("adam", "the optimizer", choices=("sgd", "adam"))
    momentum: float = setting(0.9, "SGD momentum", ge=0)
    nesterov: bool = setting(True, "Nesterov momentum (SGD)")
    weight_decay: float = setting(0.0, "L2 weight decay", ge=0)
    schedule: str = setting("onecycle", "per-step learning-rate schedule",
                            choices=("constant", "step", "cosine", "onecycle", "triangle"))
    warmup_steps: int = setting(0, "linear warm-up steps (not with onecycle)", ge=0)
    pct_start: float = setting(0.3, "onecycle, triangle: share of the steps that warm up",
                               ge=0, le=1)
    div_factor: float = setting(25.0, "onecycle, triangle: the first lr is --lr / N", gt=0)
    end_factor: float = setting(0.07, "triangle: the lr falls linearly to --lr x N at the end",
                                ge=0)
    anneal: str = setting("cos", "onecycle: shape of the warm-up and decay",
                          choices=("cos", "linear"))
    bn_bias_lr_scale: float = setting(1.0, "BatchNorm biases take steps N times larger (their "
                                      "weight decay per step unchanged)", ge=0)
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy", ge=0, le=1)
    augment: bool = setting(False, "random crop + horizontal flip (on in --preset cifar10)")
    flip: str = setting("random", "the flip of --augment: random (each image with p = 1/2) or "
                        "alternate (airbench: a random half of the images in even epochs, the "
                        "other half in odd ones)", choices=("random", "alternate"))
    crop_padding: int = setting(4, "padding of the random crop (shifts up to N pixels)", ge=0)
    crop_padding_mode: str = setting("zeros", "what the crop pads with: zeros, or reflect "
                                     "(mirrored edge pixels, airbench)",
                                     choices=("zeros", "reflect"))
    tta: bool = setting(False, "test-time augmentation in the final evaluation (see "
                        "--tta-level); every epoch's evaluation stays plain")
    tta_level: int = setting(1, "with --tta: 1 = each image and its mirror image; 2 = also "
                             "both shifted one pixel diagonally, 6 views (airbench)",
                             choices=(1, 2))
    val_split: int = setting(0, "hold out N training images for validation (0: train on all "
                             "of them and evaluate on the test split, or not at all where the "
                             "data set has none)", ge=0)
    activation: str = setting(None, "the activation of a model that offers the choice "
                              "(FastNet, airbench94); default: the model's own",
                              choices=("relu", "gelu"))
    whiten_bias_epochs: int = setting(0, "a whitening stem's bias learns in the first N "
                                      "epochs only, then freezes (airbench: 3; 0: always "
                                      "learns)", ge=0)
    lookahead: bool = setting(False, "airbench's lookahead: every 5 steps after epoch "
                              "--lookahead-start, move an average of the weights toward them "
                              "and restart from it (optim.Lookahead)")
    lookahead_start: int = setting(3, "lookahead: the epoch after which it begins", ge=0)
    synthetic_size: int = setting(10000, "training images of the synthetic set", ge=1)
    seed: int = setting(0, "seed of the initialisation, data order and augmentation", ge=0)
    out: str = setting("runs/latest", "output folder (with --resume: the run's own unless "
                       "given)", optional=True, resume=True)
    log_every: int = setting(100, "log the mean loss every N steps", ge=1, resume=True)
    max_steps: int = setting(0, "stop after this many steps in all, with a checkpoint (0: no "
                             "limit)", ge=0, resume=True)
    checkpoint_every: int = setting(500, "also write a checkpoint every N steps (0: only at "
                                    "epoch ends); 500 is about 4 minutes of the slowest "
                                    "documented run", ge=0, resume=True)
    eval_batch_size: int = setting(500, "images per evaluation batch", ge=1, resume=True)
    progress: bool = setting(None, "progress bar (default: when stderr is a terminal)",
                             resume=True)
    compile: bool = setting(True, "train through the compiled fast path, minitorch_cnn.compile; "
                            "--no-compile trains the plain teaching layers", resume=True)

    def __post_init__(self):
        for f in fields(self):
            try:
                setattr(self, f.name, check_setting(f, getattr(self, f.name)))
            except ValueError as err:
                raise ValueError(f"TrainConfig: {err}") from None

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


PRESETS = {
    # Real CIFAR-10: one-cycle SGD with Nesterov momentum (peak lr 0.1), weight decay
    # 5e-4, label smoothing 0.1, crop + flip, 5,000 training images held out -- the
    # recipe with which PyTorch CPU reached 78.4 % after 15 epochs on this kind of
    # machine; 30 epochs because accuracy was still rising. What it reaches here:
    # docs/results.md.
    "cifar10": dict(data="cifar10", epochs=30, batch_size=100, lr=0.1, optimizer="sgd",
                    momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="onecycle",
                    label_smoothing=0.1, augment=True, val_split=5000),
    # Time to accuracy: airbench94 (Keller Jordan, KellerJordan/cifar10-airbench,
    # airbench94.py: 94.01 % mean test accuracy in 9.9 epochs), ported setting by setting.
    # Its network is the model airbench94 (widths 64/256/256; GELU; BatchNorm eps 1e-12,
    # momentum 0.4 = 1 - its 0.6, weights frozen; whitening stem from 5,000 images, eps
    # 5e-4; identity-initialised convolutions; logits / 9; no fc bias). Its optimizer:
    # Nesterov SGD, momentum 0.85, on the loss *summed* over 1,024 images, with lr 11.5 and
    # weight decay 0.0153 "per 1,024 examples", i.e. torch lr 11.5 / K and weight_decay
    # 0.0153 * 1024 / 11.5 with K = 1024 (1 + 1 / (1 - 0.85)) = 7,851. Our loss is the
    # mean over the batch, whose gradient is 1,024 times smaller, so the same steps need
    # lr = 11.5 / K * 1024 = 11.5 / 7.667 = 1.5 and weight_decay = 0.0153 * 1024 / 11.5 /
    # 1024 = 0.0153 / 11.5 = 1.3304e-3 (decay per step lr * wd = 2.0e-3, as airbench's);
    # BatchNorm biases at 64x the lr with the same decay per step (lr_scale 64 divides
    # their weight_decay by 64, as airbench's wd / lr_biases). Schedule: airbench's
    # triangle, lr x 0.2 -> 1 at step int(0.23 T) -> 0.07 at T = ceil(9.9 x steps per
    # epoch) (here 43 steps of 1,024 of the 45,000 images: T = 426; airbench: 48 x 9.9 ->
    # 476), label smoothing 0.2; the whitening bias learns for 3 epochs, then freezes;
    # lookahead from epoch 3 (every 5 steps, decay 0.95^5 (t / T)^3); alternating flips
    # and 2-pixel translations with reflect padding; final evaluation with TTA level 2
    # (mirror + one-pixel diagonal shifts, 6 views). 5,000 training images held out for
    # validation (airbench reports the official test set; this project's copy has none).
    "cifar10-fast": dict(data="cifar10", model="airbench94", epochs=9.9, batch_size=1024,
                         lr=1.5, optimizer="sgd", momentum=0.85, nesterov=True,
                         weight_decay=0.0153 / 11.5, schedule="triangle", pct_start=0.23,
                         div_factor=5.0, end_factor=0.07, bn_bias_lr_scale=64.0,
                         label_smoothing=0.2, augment=True, flip="alternate", crop_padding=2,
                         crop_padding_mode="reflect", whiten_bias_epochs=3, lookahead=True,
                         lookahead_start=3, tta=True, tta_level=2, val_split=5000),
}


SPLITS = {"test": "test", "val": "validation"}
"""Evaluation splits by their command-line name, and the name the accuracy line uses."""


def has_test_split(cfg):
    return cfg.data in ("synthetic", "cifar10")


def load_datasets(cfg, split=None):
    """(train, evaluation set, name of the evaluation set) for a config.

    ``split``: "test" (the data set's official test split), "val" (the ``val_split``
    images held out of the training set) or None, the run's own: "val" when the run
    holds some out, else "test". The training set is always the run's (held-out
    images removed), so its normalisation statistics are the run's too.
    Without a requested split, CIFAR-10 given as a copy of the training set only (no
    test_batch) and ``val_split=0`` gives (train, None, None): the run trains on every
    image and evaluates nothing.
    """
    explicit = split is not None
    split = split or ("val" if cfg.val_split or not has_test_split(cfg) else "test")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected test or val")
    if cfg.data == "folder" and not cfg.data_dir:
        raise ValueError("--data folder needs --data-dir PATH (PATH/<class>/*.png|jpg)")
    if split == "test" and not has_test_split(cfg):
        raise ValueError(f"--data {cfg.data} has no test split: use --split val")
    if split == "val" and not cfg.val_split:
        raise ValueError(f"--data {cfg.data} has no test split: give --val-split N to hold out "
                         "N training images" if not has_test_split(cfg) else
                         "there is no validation split: the run held out no training images "
                         "(--val-split 0); give --val-split N or use --split test")
    if cfg.data == "synthetic":
        train = D.synthetic(train=True, n=cfg.synthetic_size, seed=cfg.seed)
        test = D.synthetic(train=False, seed=cfg.seed) if split == "test" else None
    elif cfg.data == "cifar10":
        root = cfg.data_dir or "data"
        train = D.CIFAR10(root, train=True)
        test = None
        if split == "test":
            try:
                test = D.CIFAR10(root, train=False)
            except FileNotFoundError:
                if explicit:
                    raise
                return train, None, None   # a copy of the training set only: nothing to test on
    elif cfg.data == "folder":
        train, test = D.ImageFolder(cfg.data_dir), None
    else:
        raise ValueError(f"unknown dataset {cfg.data!r}: expected synthetic, cifar10 or folder")
    if cfg.val_split:
        train, val = D.train_val_split(train, cfg.val_split, seed=cfg.seed)
        if split == "val":
            return train, val, SPLITS[split]
    return train, test, SPLITS[split]


def build_transform(cfg, dataset):
    """Crop + flip (if augmenting; ``cfg.flip`` random or alternate) then per-channel
    normalisation."""
    mean, std = (D.CIFAR10_MEAN, D.CIFAR10_STD) if cfg.data == "cifar10" else \
        channel_stats(dataset.images)
    flip = D.AlternatingFlip(len(dataset), seed=cfg.seed) if cfg.flip == "alternate" else \
        D.RandomHorizontalFlip()
    steps = [D.RandomCrop(dataset.images.shape[1], padding=cfg.crop_padding,
                          padding_mode=cfg.crop_padding_mode), flip] if cfg.augment else []
    return D.Compose(steps + [D.Normalize(mean, std)]), D.Normalize(mean, std)


def make_loaders(cfg):
    """(training loader, evaluation loader, name of the evaluation set) for a config: the
    batches, order and augmentation of a run, as a function of ``cfg`` alone."""
    train, evalset, eval_name = load_datasets(cfg)
    train_tf, eval_tf = build_transform(cfg, train)
    train_loader = D.DataLoader(train, cfg.batch_size, shuffle=True, seed=cfg.seed,
                                transform=train_tf, drop_last=True)
    eval_loader = None if evalset is None else D.DataLoader(evalset, cfg.eval_batch_size,
                                                            transform=eval_tf)
    return train_loader, eval_loader, eval_name


def prepare_model(model, cfg, train_set, normalise):
    """What a recipe does to a freshly built model before its first step.

    A model with an ``init_from_data(images)`` method (FastNet's whitening
    stem) gets the first 5,000 training images as a loader with ``normalise``
    (the evaluation transform) gives them; ``cfg.bn_bias_lr_scale`` becomes
    the ``lr_scale`` of every BatchNorm bias.
    """
    if hasattr(model, "init_from_data"):
        first = D.DataLoader(train_set, min(5000, len(train_set)), transform=normalise)
        model.init_from_data(next(iter(first))[0])
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.bias.lr_scale = float(cfg.bn_bias_lr_scale)


def total_steps(cfg, steps_per_epoch):
    """Steps of the whole run: ``ceil(epochs x steps per epoch)`` (9.9 epochs of 43 steps:
    426; the last epoch is cut short)."""
    return math.ceil(round(cfg.epochs * steps_per_epoch, 9))


def make_schedule(cfg, optimizer, steps_per_epoch):
    """The per-step learning-rate schedule of a config (``cfg.epochs`` epochs)."""
    kw = {}
    if cfg.schedule == "onecycle":
        kw = dict(pct_start=cfg.pct_start, div_factor=cfg.div_factor,
                  anneal_strategy=cfg.anneal)
    elif cfg.schedule == "triangle":
        kw = dict(start=1 / cfg.div_factor, peak=cfg.pct_start, end=cfg.end_factor)
    return optim.make_scheduler(cfg.schedule, optimizer, total_steps(cfg, steps_per_epoch),
                                warmup_steps=cfg.warmup_steps, **kw)


def start_epoch(model, cfg, epoch):
    """What a recipe changes at the start of an epoch: a whitening stem's bias stops
    learning after ``cfg.whiten_bias_epochs`` epochs (airbench; 0: it never stops)."""
    if cfg.whiten_bias_epochs and getattr(model, "whiten", False):
        model.stem[0].bias.requires_grad = epoch < cfg.whiten_bias_epochs


def build_model(cfg, num_classes):
    """The registry's ``cfg.model``, seeded by ``cfg.seed``, with ``cfg.activation`` if set."""
    kw = {} if cfg.activation is None else {"activation": cfg.activation}
    try:
        return models.get_model(cfg.model, num_classes=num_classes,
                                rng=np.random.default_rng(cfg.seed), **kw)
    except TypeError as err:
        if kw and "activation" in str(err):
            raise ValueError(f"--activation: the model {cfg.model} has no choice of "
                             "activation (FastNet and airbench94 do)") from None
        raise


def channel_stats(images):
    x = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    return tuple(x.mean(axis=0)), tuple(x.std(axis=0))


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


def fingerprint(dataset, first=1000):
    """What identifies a training set across moves: its size and a SHA-256 of its first
    ``first`` images and labels (cheap: 3 MB for CIFAR-10)."""
    digest = hashlib.sha256(np.ascontiguousarray(dataset.images[:first]).tobytes())
    digest.update(np.ascontiguousarray(dataset.labels[:first], dtype=np.int64).tobytes())
    return {"size": len(dataset), "sha256": digest.hexdigest()}


def _describe_data(fp):
    return f"{fp.get('size')} training images, checksum {str(fp.get('sha256'))[:12]}"


def resume_config(meta, given, path):
    """The configuration a resumed run continues with: the checkpoint's, with the
    settings that may change on resume (``setting(..., resume=True)``) taken from
    ``given``, a TrainConfig or a dict of the settings named (the command line's).

    Any other setting of ``given`` that differs from the checkpoint's is refused with
    a ValueError naming the file and listing every difference (the model and the
    data set among them), so a run never silently continues with other settings.
    """
    if "config" not in meta:
        raise ValueError(f"{path} holds no training configuration (a plain state_dict?): it "
                         "cannot be resumed; evaluate it with `evaluate --model`")
    try:
        saved = TrainConfig.from_dict(meta["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: the checkpoint's configuration is invalid: {err}") from None
    values = asdict(given) if isinstance(given, TrainConfig) else dict(given or {})
    if values.get("out", "") is None:
        values.pop("out")                 # None: the run's own folder
    by_name = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")
    differ = [f"--{k.replace('_', '-')} {v} (the checkpoint has {getattr(saved, k)})"
              for k, v in values.items()
              if not by_name[k].metadata.get("resume") and v != getattr(saved, k)]
    done, started = int(meta.get("epoch", 0)), int(meta.get("step", 0)) > 0
    if values.get("epochs", saved.epochs) < done + started:
        differ.append(f"--epochs {values['epochs']} (the checkpoint has already trained "
                      f"{done} epochs{' and part of the next' if started else ''})")
    if differ:
        may = ", ".join(f"--{f.name.replace('_', '-')}" for f in by_name.values()
                        if f.metadata.get("resume"))
        raise ValueError(f"{path}: --resume refused, settings differ from the checkpoint's: "
                         + "; ".join(differ) + f". Only {may} may change on resume; start a "
                         "new run (another --out) to train with other settings")
    for k, v in values.items():
        setattr(saved, k, v)
    return saved


class Trainer:
    """Runs a TrainConfig: ``Trainer(cfg).fit()``; ``resume=PATH`` continues a checkpoint.

    With ``resume``, ``cfg`` may also be a dict of only the settings to change (what the
    command line passes); see :func:`resume_config` for what may change.

    ``model`` replaces the registry's ``cfg.model`` with a Module of your own.
    """

    def __init__(self, cfg, resume=None, log=None, model=None):
        self.log = log or _print_now
        if resume is not None:
            state, resume = load_for_resume(resume, self.log)
            cfg = resume_config(state["meta"], cfg, resume)
        elif not isinstance(cfg, TrainConfig):
            raise TypeError(f"Trainer: cfg must be a TrainConfig (a dict only with resume=), "
                            f"got {type(cfg).__name__}")
        self.cfg = cfg
        self.train_loader, self.eval_loader, self.eval_name = make_loaders(cfg)
        self.classes = self.train_loader.dataset.classes
        self.model = model if model is not None else build_model(cfg, len(self.classes))
        prepare_model(self.model, cfg, self.train_loader.dataset,
                      build_transform(cfg, self.train_loader.dataset)[1])
        # the fast path (minitorch_cnn.fast) on the same Parameters, or the plain layers
        self.net = compile_model(self.model, input_grad=False) if cfg.compile else self.model
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = total_steps(cfg, self.steps_per_epoch)
        self.optimizer = self._optimizer()
        self.scheduler = make_schedule(cfg, self.optimizer, self.steps_per_epoch)
        self.epoch, self.step = 0, 0           # position: next step to run
        self.history = {"step_loss": [], "epochs": []}
        self._epoch_counts = {"seen": 0, "correct": 0}  # of the epoch so far (saved)
        self.data_fingerprint = fingerprint(self.train_loader.dataset)
        if resume is not None:
            self._restore(state, resume)

    def _optimizer(self):
        c, params = self.cfg, self.model.parameters()
        if c.optimizer == "sgd":
            opt = optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov,
                            weight_decay=c.weight_decay)
        elif c.optimizer == "adam":
            opt = optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
        else:
            raise ValueError(f"unknown optimizer {c.optimizer!r}: expected sgd or adam")
        if c.lookahead:
            opt = optim.Lookahead(opt, self.model, self.total_steps,
                                  start_step=c.lookahead_start * self.steps_per_epoch)
        return opt

    def _restore(self, state, path):
        """Load a checkpoint's state; any problem is a ValueError naming ``path`` (the
        trainer is then not to be used: make a new one)."""
        meta = state["meta"]
        saved_data = meta.get("data")
        if saved_data is not None and saved_data != self.data_fingerprint:
            raise ValueError(
                f"{path}: --resume refused, the data at "
                f"{self.cfg.data_dir or 'its default place'} is not the data set this run was "
                f"trained on ({_describe_data(self.data_fingerprint)}"
                f"; the checkpoint's: {_describe_data(saved_data)})")
        try:
            epoch, step, history = int(meta["epoch"]), int(meta["step"]), meta["history"]
            if not 0 <= step < self.steps_per_epoch or epoch < 0:
                raise ValueError(f"position epoch {epoch}, step {step} is outside a run of "
                                 f"{self.steps_per_epoch} steps per epoch")
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optim"])
            self.scheduler.load_state_dict(state["sched"])
        except (KeyError, TypeError, ValueError) as err:
            what = f"missing entry {err}" if isinstance(err, KeyError) else str(err)
            raise ValueError(f"{path}: cannot resume from this checkpoint: {what}") from None
        self.epoch, self.step, self.history = epoch, step, history
        self._epoch_counts = dict(meta.get("epoch_counts", {"seen": 0, "correct": 0}))
        self.log(f"Resumed from {path} at epoch {self.epoch + 1}, step {self.step}")

    # ------------------------------------------------------------- saving
    @property
    def checkpoint_path(self):
        return os.path.join(self.cfg.out, "checkpoint.npz")

    def save(self, path=None):
        """Write the run's state to ``path`` (default: ``checkpoint_path``, keeping the one
        before as ``checkpoint.prev.npz``). A failed write raises CheckpointError and
        leaves the checkpoints already on disk as they were."""
        meta = {"config": asdict(self.cfg), "epoch": self.epoch, "step": self.step,
                "classes": list(self.classes), "history": self.history,
                "epoch_counts": self._epoch_counts, "data": self.data_fingerprint}
        path = path or self.checkpoint_path
        try:
            save_checkpoint(path, self.model, self.optimizer, self.scheduler, meta,
                            keep_previous=path == self.checkpoint_path)
        except OSError as err:
            kept = [p for p in (path, previous_path(path)) if os.path.isfile(p)]
            raise CheckpointError(
                f"could not write the checkpoint {path}: {err.strerror or err}. "
                + (f"Unchanged on disk: {', '.join(kept)}; free some space and continue with "
                   f"--resume {kept[0]}" if kept else "No checkpoint of this run exists yet")
            ) from err

    def checkpoint_bytes(self):
        """About the size of one checkpoint: the model's state and the optimizer's arrays,
        plus room for the history and the archive's headers."""
        model = sum(v.nbytes for v in self.model.state_dict().values())
        params = sum(p.data.nbytes for p in self.optimizer.params)
        return model + params * len(self.optimizer.state_names) + (1 << 20)

    def check_out_dir(self):
        """Before the first step: ``--out`` exists or can be made, is writable, and holds
        three checkpoints (the newest, the previous and one being written), counting the
        ones of this run already there. A CheckpointError says what is wrong otherwise."""
        out = self.cfg.out
        try:
            os.makedirs(out, exist_ok=True)
            with tempfile.TemporaryFile(dir=out):
                pass
        except OSError as err:
            raise CheckpointError(f"--out {out}: cannot write there ({err.strerror or err})"
                                  ) from err
        for name in os.listdir(out):  # a write cut short by a crash left its temporary file
            if name.endswith(".tmp") and any(name.startswith(temporary_prefix(p)) for p in (
                    self.checkpoint_path, previous_path(self.checkpoint_path))):
                os.remove(os.path.join(out, name))
        need = 3 * self.checkpoint_bytes() - sum(
            os.path.getsize(p) for p in (self.checkpoint_path, previous_path(self.checkpoint_path))
            if os.path.isfile(p))
        free = shutil.disk_usage(out).free
        if free < need:
            raise CheckpointError(
                f"--out {out}: {free / 2**20:.1f} MiB free, but checkpoints need about "
                f"{need / 2**20:.1f} MiB more (three of {self.checkpoint_bytes() / 2**20:.1f} MiB "
                "may exist at once: the newest, the previous and one being written)")

    # ----------------------------------------------------------- training
    def train_step(self, x, y):
        logits = self.net(x)
        loss = self.criterion(logits, y)
        if not math.isfinite(loss):
            return loss, logits
        self.net.backward(self.criterion.backward())
        self.optimizer.step()
        self.scheduler.step()
        self.model.zero_grad()
        return loss, logits

    def fit(self, on_step=None):
        """Train to the configured number of epochs; returns the history.

        ``on_step(trainer)`` runs after every step (tests use it to simulate
        an interruption by raising KeyboardInterrupt). Ctrl-C saves a
        checkpoint at the current step and re-raises.
        """
        c = self.cfg
        self.check_out_dir()
        self.model.train()
        total = self.total_steps
        try:
            while self._global_step() < total:
                self._run_epoch(on_step, total)
                if self._step_limit_reached():
                    if self.step:  # stopped mid-epoch: keep the position for --resume
                        self.save()
                    break
        except KeyboardInterrupt:
            self.save()
            self.log(f"Interrupted at epoch {self.epoch + 1}, step {self.step}; checkpoint "
                     f"saved to {self.checkpoint_path} (continue with --resume)")
            raise
        return self.history

    def _global_step(self):
        return self.epoch * self.steps_per_epoch + self.step

    def _step_limit_reached(self):
        return bool(self.cfg.max_steps) and self._global_step() >= self.cfg.max_steps

    def _epoch_steps(self):
        """Steps of the current epoch: all of them, or what is left of the run in the last."""
        return min(self.steps_per_epoch, self.total_steps - self.epoch * self.steps_per_epoch)

    def _run_epoch(self, on_step, total):
        c, n_steps = self.cfg, self._epoch_steps()
        start_epoch(self.model, c, self.epoch)
        bar = _progress(c, n_steps, self.step, f"epoch {self.epoch + 1}/{c.epochs:g}")
        t0, seen, losses = time.perf_counter(), 0, []
        window, counts = [], self._epoch_counts
        for x, y in self.train_loader.iter_epoch(self.epoch, self.step):
            loss, logits = self.train_step(x, y)
            if not math.isfinite(loss):
                bar.close()
                raise TrainingDiverged(
                    f"loss became {loss} at epoch {self.epoch + 1}, step {self.step + 1} "
                    f"(lr {self.optimizer.lr:.3g}); try a lower learning rate (--lr). The last "
                    f"good checkpoint, if any, is {self.checkpoint_path}")
            self.step += 1
            seen += len(y)
            counts["seen"] += len(y)
            counts["correct"] += int((logits.argmax(axis=1) == y).sum())
            losses.append(loss)
            window.append(loss)
            self.history["step_loss"].append(loss)
            rate = seen / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{rate:.0f}")
            bar.update(1)
            if self.step % c.log_every == 0 or self.step == n_steps:
                _write(bar, f"Epoch [{self.epoch + 1}/{c.epochs:g}]. Step [{self.step}/{n_steps}] "
                            f"Loss: {np.mean(window):.4f}", self.log)
                window = []
            if c.checkpoint_every and self._global_step() % c.checkpoint_every == 0 \
                    and self.step < n_steps and not self._step_limit_reached():
                self.save()  # (the epoch's end and --max-steps save anyway)
            if on_step is not None:
                on_step(self)
            if self._step_limit_reached() or self.step == n_steps:
                break
        bar.close()
        seconds = time.perf_counter() - t0
        if self.step == n_steps:
            self._end_epoch(seconds, seen)
        elif losses:
            self.log(f"Stopped at epoch {self.epoch + 1}, step {self.step} (--max-steps "
                     f"{c.max_steps}): train loss {np.mean(losses):.4f} over {len(losses)} "
                     f"steps, {seen / seconds:.0f} images/s")

    def _end_epoch(self, seconds, seen):
        """The epoch's row of metrics (training loss and accuracy over all its steps, also
        those before a resume; evaluated without test-time augmentation), its checkpoint
        and metrics files."""
        if self.cfg.lookahead:
            self.optimizer.sync()     # the model that is evaluated and saved is the average
        losses, counts = self.history["step_loss"][-self._epoch_steps():], self._epoch_counts
        row = {"epoch": self.epoch + 1, "train_loss": float(np.mean(losses)),
               "train_acc": 100.0 * counts["correct"] / max(counts["seen"], 1)}
        tail = ""
        if self.eval_loader is not None:
            acc, _, _ = evaluate(self.net, self.eval_loader)
            row[f"{self.eval_name}_acc"] = acc
            tail = f", {self.eval_name} accuracy {acc:.2f} %"
        row.update({"lr": self.optimizer.lr, "seconds": seconds,
                    "images_per_s": seen / seconds})
        self.history["epochs"].append(row)
        self.log(f"Epoch [{self.epoch + 1}/{self.cfg.epochs:g}] done in {seconds:.1f} s "
                 f"({row['images_per_s']:.0f} images/s): train loss {row['train_loss']:.4f}"
                 + tail)
        self.epoch, self.step = self.epoch + 1, 0
        self._epoch_counts = {"seen": 0, "correct": 0}
        self.save()
        write_metrics(self.cfg.out, self.history, self.eval_name or "no evaluation")

    def final_report(self):
        """The seed's closing line, on the evaluation split, with the configured test-time
        augmentation (and the plain accuracy beside it); (None, None) without one."""
        if self.eval_loader is None:
            self.log(f"No evaluation: {self.cfg.data} here has no test split and --val-split "
                     f"is 0, so the model trained on all {self.train_loader.num_samples} "
                     "images (give --val-split N to hold some out)")
            return None, None
        level = tta_level(self.cfg)
        acc, per_class, _ = evaluate(self.net, self.eval_loader, tta=level)
        extra, plain = "", acc
        if level:
            rows = self.history["epochs"]
            plain = rows[-1].get(f"{self.eval_name}_acc") if rows and not self.step else None
            if plain is None:                 # not evaluated since the last step
                plain, _, _ = evaluate(self.net, self.eval_loader)
            extra = f" (test-time augmentation level {level}; {plain:.2f} % without)"
        self.history["final"] = {"tta_level": level, f"{self.eval_name}_acc": plain,
                                 f"{self.eval_name}_tta_acc": acc}
        if os.path.isdir(self.cfg.out):
            write_metrics(self.cfg.out, self.history, self.eval_name)
        self.log(f"Accuracy of the model on the {self.eval_name} images: {acc:.2f} %" + extra)
        return acc, per_class


def write_metrics(out, history, eval_name):
    """metrics.csv, metrics.json and curves.png in ``out``."""
    import csv
    import json

    from ..viz import plot_training_curves
    rows = history["epochs"]
    if rows:
        with open(os.path.join(out, "metrics.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(history, f, indent=1)
    plot_training_curves(history, os.path.join(out, "curves.png"), eval_name=eval_name)


def _print_now(line):
    """print, flushed: log lines reach a file or a pipe when they happen."""
    print(line, flush=True)


class _NoBar:
    def set_postfix(self, **kw):
        pass

    def update(self, n):
        pass

    def close(self):
        pass


def _progress(cfg, total, initial, desc):
    show = sys.stderr.isatty() if cfg.progress is None else cfg.progress
    if not show:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=desc, leave=False, file=sys.stderr)


def _write(bar, line, log):
    if isinstance(bar, _NoBar):
        log(line)
    else:
        bar.clear()
        log(line)
        bar.refresh()
