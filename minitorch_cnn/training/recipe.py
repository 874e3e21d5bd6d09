"""A run's recipe as functions of its ``TrainConfig``: the data sets and their split,
the augmentation, the loaders, the model and what is done to it before the first step,
the optimizer and the learning-rate schedule.

The data order and augmentation of a step depend only on (seed, epoch, step), so
everything here is a function of the config alone: a resumed run rebuilds the same.
"""
import hashlib
import math

import numpy as np

from .. import data as D
from .. import models, nn, optim

SPLITS = {"test": "test", "val": "validation"}
"""Evaluation splits by their command-line name, and the name the accuracy line uses."""


def has_test_split(cfg):
    """Whether the config's data set has an official test split."""
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
    the ``lr_scale`` of every BatchNorm bias (and of a whitening bias on its
    own ``linear`` schedule).
    """
    if hasattr(model, "init_from_data"):
        first = D.DataLoader(train_set, min(5000, len(train_set)), transform=normalise)
        model.init_from_data(next(iter(first))[0])
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.bias.lr_scale = float(cfg.bn_bias_lr_scale)
    whiten = whiten_bias(cfg, model)
    if whiten is not None:            # linear: at the BatchNorm biases' rate, on its own line
        whiten.lr_scale = float(cfg.bn_bias_lr_scale)


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
    schedule = optim.make_scheduler(cfg.schedule, optimizer, total_steps(cfg, steps_per_epoch),
                                    warmup_steps=cfg.warmup_steps, **kw)
    members = getattr(optimizer, "members", {})
    if "whiten" in members:
        return WhitenBiasSchedule(schedule, members["whiten"], optimizer.base_lrs["whiten"],
                                  cfg.whiten_bias_epochs * steps_per_epoch)
    return schedule


class WhitenBiasSchedule:
    """``schedule``, and beside it airbench94_muon's line for the whitening bias: its
    optimizer's rate falls from ``base_lr`` at step 0 to 0 at step ``steps`` (then the bias
    freezes, see ``start_epoch``), while the others follow ``schedule``. Its state is
    ``schedule``'s: the bias's rate is a function of the step alone."""

    def __init__(self, schedule, optimizer, base_lr, steps):
        self.schedule, self.optimizer, self.base_lr, self.steps = (schedule, optimizer,
                                                                   base_lr, steps)
        self._apply()

    def _apply(self):
        self.optimizer.lr = self.base_lr * max(0.0, 1.0 - self.schedule.last_step / self.steps)

    def step(self):
        lr = self.schedule.step()
        self._apply()
        return lr

    def state_dict(self):
        return self.schedule.state_dict()

    def load_state_dict(self, state_dict):
        self.schedule.load_state_dict(state_dict)
        self._apply()

    def __getattr__(self, name):          # last_step, lr_at, ...: the main schedule's
        if name == "schedule":
            raise AttributeError(name)
        return getattr(self.schedule, name)


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
    """Per-channel mean and standard deviation of uint8 NHWC images, scaled to [0, 1]."""
    x = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    return tuple(x.mean(axis=0)), tuple(x.std(axis=0))

def whiten_bias(cfg, model):
    """The whitening stem's bias when it learns on its own ``linear`` schedule, else None."""
    if cfg.whiten_bias_schedule != "linear" or not getattr(model, "whiten", False):
        return None
    if not cfg.whiten_bias_epochs:
        raise ValueError("--whiten-bias-schedule linear needs --whiten-bias-epochs N > 0 "
                         "(the epochs over which the bias's rate falls to 0)")
    return model.stem[0].bias


def make_optimizer(cfg, model, steps_per_epoch):
    """The optimizer of a config over ``model``'s parameters, wrapped in Lookahead when
    ``cfg.lookahead`` (which needs the run's length).

    ``muon``: ``optim.Muon`` for the 4-D filters beside SGD for the rest
    (``optim.muon_param_groups``), as one ``optim.Combined``; Muon's eps is airbench's
    1e-7 divided by the batch size, because our loss is the batch's mean, not its sum.
    A whitening bias on its own ``linear`` schedule gets an SGD of its own ("whiten").
    """
    whiten = whiten_bias(cfg, model)
    params = [p for p in model.parameters() if p is not whiten]

    def sgd(ps):
        return optim.SGD(ps, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                         weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        members = dict(sgd=sgd(params))
    elif cfg.optimizer == "muon":
        filters, _ = optim.muon_param_groups(model)
        rest = [p for p in params if not any(p is f for f in filters)]
        members = dict(sgd=sgd(rest), muon=optim.Muon(
            filters, lr=cfg.muon_lr, momentum=cfg.muon_momentum, nesterov=cfg.nesterov,
            eps=1e-7 / cfg.batch_size))
    elif cfg.optimizer == "adam":
        if whiten is not None:
            raise ValueError("--whiten-bias-schedule linear needs --optimizer sgd or muon")
        members = dict(adam=optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay))
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}: expected sgd, adam or muon")
    if whiten is not None:
        members["whiten"] = sgd([whiten])
    opt = optim.Combined(**members) if len(members) > 1 else next(iter(members.values()))
    if cfg.lookahead:
        opt = optim.Lookahead(opt, model, total_steps(cfg, steps_per_epoch),
                              start_step=cfg.lookahead_start * steps_per_epoch)
    return opt


def fingerprint(dataset, first=1000):
    """What identifies a training set across moves: its size and a SHA-256 of its first
    ``first`` images and labels (cheap: 3 MB for CIFAR-10)."""
    digest = hashlib.sha256(np.ascontiguousarray(dataset.images[:first]).tobytes())
    digest.update(np.ascontiguousarray(dataset.labels[:first], dtype=np.int64).tobytes())
    return {"size": len(dataset), "sha256": digest.hexdigest()}


def describe_data(fp):
    return f"{fp.get('size')} training images, checksum {str(fp.get('sha256'))[:12]}"
