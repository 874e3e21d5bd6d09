"""The settings of a run: ``TrainConfig``, the rules of each setting, and what may
change when a run is resumed.

Every setting is one field, ``name: type = setting(default, help, **rules)``; the
command line derives its flags from the fields (``cli.add_setting_arguments``), and
``TrainConfig(...)`` checks the same rules, so a bad value is refused with the
setting's name whichever way it comes.
"""
import math
import operator
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from .. import models

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
    augmentation (the shapes already sit at random places). ``PRESETS``
    (presets.py) hold recipes for real data.

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
    optimizer: str = setting("adam", "the optimizer; muon: Muon for the 4-D convolution "
                             "filters (--muon-lr, --muon-momentum), SGD for the rest "
                             "(airbench94_muon)", choices=("sgd", "adam", "muon"))
    momentum: float = setting(0.9, "SGD momentum", ge=0)
    muon_lr: float = setting(0.24, "--optimizer muon: Muon's (peak) learning rate; the "
                             "schedule moves it with --lr", ge=0)
    muon_momentum: float = setting(0.6, "--optimizer muon: Muon's momentum (Nesterov with "
                                   "--nesterov)", ge=0)
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
    whiten_bias_schedule: str = setting("main", "a whitening stem bias's learning rate: main "
                                        "(the schedule of the others; airbench94) or linear "
                                        "(--lr x --bn-bias-lr-scale falling to 0 over "
                                        "--whiten-bias-epochs; airbench94_muon)",
                                        choices=("main", "linear"))
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
