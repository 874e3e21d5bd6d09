"""The command line: ``python -m minitorch_cnn <command> ...`` (or ``minitorch-cnn``).

Each subcommand is one ``add_<name>_parser(subparsers)`` function that
registers its arguments and sets ``func`` to the function that runs it
(``func(args) -> exit status``). To add a command (``train``,
``evaluate``, ...), write such a pair and append the registration function
to :data:`COMMANDS`.
"""
import argparse
import sys

from .assignments.cli import add_assignment_parser


def _parse_shape(text):
    """'224x224x3' -> (224, 224, 3)."""
    try:
        shape = tuple(int(v) for v in text.lower().replace(",", "x").split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected HxWxC such as 224x224x3, got {text!r}")
    return shape


# ------------------------------------------------------------------- summary
def add_summary_parser(subparsers):
    from .models import MODELS
    p = subparsers.add_parser(
        "summary", help="per-layer output shapes, parameters and multiply-accumulates of a model",
        description="Print each layer's name, type, output shape, parameters and multiply-"
                    "accumulates (Conv2d and Linear; the paper's Table 1 'FLOPs'), with totals.")
    p.add_argument("model", metavar="MODEL", choices=sorted(MODELS),
                   help="one of: " + ", ".join(MODELS))
    p.add_argument("--input", type=_parse_shape, default=None, metavar="HxWxC",
                   help="input size of one image, NHWC order (default: the model's own, "
                        "32x32x3 for CIFAR models, 224x224x3 for ImageNet ones); "
                        "a CxHxW such as 3x224x224 is also understood")
    p.add_argument("--num-classes", type=int, default=None, help="classifier outputs")
    p.add_argument("--depth", type=int, default=None,
                   help="merge rows to this many name levels (1: stages, 2: blocks)")
    p.add_argument("--stride-in-3x3", action="store_true",
                   help="ResNet-50/101/152: stride on the bottleneck's 3x3 (torchvision) "
                        "instead of its first 1x1 (the paper)")
    p.add_argument("--fast", action="store_true",
                   help="add a column saying what the compiled fast path (minitorch_cnn.compile) "
                        "does at each layer: fusions and convolution algorithms")
    p.set_defaults(func=run_summary)
    return p


def run_summary(args):
    from .models import MODELS, get_model
    from .summary import summary
    kwargs = {}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    if args.stride_in_3x3:
        if args.model not in ("resnet50", "resnet101", "resnet152"):
            print(f"error: --stride-in-3x3 applies to resnet50/101/152, not {args.model}",
                  file=sys.stderr)
            return 2
        kwargs["stride_in_1x1"] = False
    shape = args.input or MODELS[args.model].input_shape
    if shape[2] != 3 and shape[0] == 3:  # given as CxHxW, PyTorch's habit
        shape = (shape[1], shape[2], shape[0])
    model = get_model(args.model, **kwargs)
    if args.fast:
        from .fast import compile as compile_model
        model = compile_model(model)
    try:
        result = summary(model, shape)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result.table(depth=args.depth))
    return 0


# --------------------------------------------------------------------- train
def _setting_type(f):
    """argparse ``type`` for a TrainConfig field: parse, then check its rules, so a bad
    value is refused naming the flag, the value and what is valid."""
    from .training import check_setting

    def parse(text):
        try:
            value = f.type(text)
        except ValueError:
            value = text
        try:
            return check_setting(f, value)
        except ValueError as err:  # "epochs must be ..." -> "argument --epochs: must be ..."
            raise argparse.ArgumentTypeError(str(err).removeprefix(f"{f.name} ")) from None
    parse.__name__ = f.type.__name__  # argparse's "invalid int value" wording
    return parse


def add_setting_arguments(p, cls, only=None):
    """One flag per field of the dataclass ``cls`` (TrainConfig): name, type, choices,
    help and range check from the field and its ``metadata`` (see training.setting).
    Every flag defaults to None, "not given", so a preset or a checkpoint can fill it.

    ``only``: ``{field name: (flag, help)}`` makes flags for these fields alone, with
    their own flag names and help (``evaluate``'s); default: every field, as ``train``.
    """
    from dataclasses import MISSING, fields

    from .training import setting_choices
    by_name = {f.name: f for f in fields(cls)}
    for f in [by_name[name] for name in only] if only is not None else fields(cls):
        flag, text = only[f.name] if only is not None else \
            ("--" + f.name.replace("_", "-"), f.metadata.get("help", ""))
        meta, metavar = f.metadata, flag[2:].replace("-", "_").upper()
        kw = dict(default=None)
        if f.type is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif meta.get("choices") is not None:  # argparse's "invalid choice: ... (choose from"
            kw.update(choices=setting_choices(meta), type=f.type,  # "1" -> 1 for int choices
                      metavar=metavar)
            text += f"; one of {', '.join(map(str, kw['choices']))}"
        else:
            kw.update(type=_setting_type(f), metavar=metavar)
        if only is None:
            if f.default not in (None, MISSING):
                text += f" (default {f.default})"
            text += " [may change on --resume]" if meta.get("resume") else ""
        p.add_argument(flag, dest=f.name, help=text, **kw)


def add_train_parser(subparsers):
    from .training import PRESETS, TrainConfig
    p = subparsers.add_parser(
        "train", help="train a model (default: the seed's ResNet50_layer4 on synthetic data)",
        description="Train a model of the zoo and report its accuracy, logging in the seed's "
                    "format. Writes checkpoint.npz (and the one before it, checkpoint.prev.npz), "
                    "metrics.csv/json and curves.png to --out. With --resume, every setting "
                    "marked [may change on --resume] may differ from the checkpoint's; any "
                    "other that differs is refused.")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="a documented recipe (flags given explicitly override it): " +
                        "; ".join(f"{name}: " + ", ".join(f"{k}={v}" for k, v in kw.items())
                                  for name, kw in PRESETS.items()))
    p.add_argument("--resume", metavar="CKPT",
                   help="continue a run from its checkpoint.npz (falls back to "
                        "checkpoint.prev.npz, with a warning, when the newest is unreadable)")
    add_setting_arguments(p, TrainConfig)
    p.set_defaults(func=run_train)
    return p


def _given_settings(args):
    """The settings the command line names: the preset's, then the explicit flags'."""
    from dataclasses import fields

    from .training import PRESETS, TrainConfig
    values = dict(PRESETS[args.preset]) if args.preset else {}
    for f in fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return values


def _train_config(args):
    """The TrainConfig of a parsed ``train`` command line (a new run: preset, then flags;
    benchmarks/torch_train.py builds its run with it too)."""
    from .training import TrainConfig
    return TrainConfig(**_given_settings(args))


def run_train(args):
    from .training import CheckpointError, Trainer, TrainingDiverged
    try:
        cfg = _given_settings(args) if args.resume else _train_config(args)
        trainer = Trainer(cfg, resume=args.resume, log=_log)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        trainer.fit()
    except (TrainingDiverged, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    trainer.final_report()
    return 0


def _log(line):
    """The trainer's log: warnings to stderr, everything else to stdout, flushed."""
    print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout, flush=True)


# ------------------------------------------------------------------ evaluate
EVALUATE_SETTINGS = {
    "model": ("--model", "needed for a plain state_dict .npz; default: the checkpoint's own"),
    "data": ("--data", "default: the checkpoint's own"),
    "data_dir": ("--data-dir", "as for train; default: the checkpoint's own"),
    "val_split": ("--val-split", "how many training images the run held out; default: the "
                                 "run's own"),
    "eval_batch_size": ("--batch-size", "images per evaluation batch (default 500)"),
    "tta": ("--tta", "test-time augmentation (see --tta-level); default: the run's own"),
    "tta_level": ("--tta-level", "with --tta: 1 = each image and its mirror image; 2 = also "
                                 "both shifted one pixel diagonally (6 views); default: the "
                                 "run's own"),
}
"""The TrainConfig settings ``evaluate`` takes, by field: its flag and help (the type,
choices and range come from the field, as ``train``'s)."""


def add_evaluate_parser(subparsers):
    from .training import TrainConfig
    p = subparsers.add_parser(
        "evaluate", help="accuracy and per-class accuracy of a checkpoint",
        description="Evaluate a checkpoint written by `train` (or a state_dict .npz with "
                    "--model) and print the seed's accuracy line, naming the split, and a "
                    "per-class table.")
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("--split", choices=["test", "val"], default=None,
                   help="test: the data set's official test images (the default when it has "
                        "them: synthetic, cifar10); val: the images the run held out of its "
                        "training set (--val-split; the default for --data folder)")
    add_setting_arguments(p, TrainConfig, only=EVALUATE_SETTINGS)
    p.set_defaults(func=run_evaluate)
    return p


def run_evaluate(args):
    from .training import checkpoint_evaluation, evaluate
    settings = {name: getattr(args, name) for name in EVALUATE_SETTINGS}
    batch_size = settings.pop("eval_batch_size") or 500
    try:
        e = checkpoint_evaluation(args.checkpoint, split=args.split, batch_size=batch_size,
                                  **settings)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    acc, per_class, _ = evaluate(e.model, e.loader, tta=e.tta)
    print(f"Accuracy of the model on the {e.split} images: {acc:.2f} %")
    width = max(len(c) for c in e.classes)
    print(f"{'class':<{width}}  accuracy")
    for name, a in zip(e.classes, per_class):
        print(f"{name:<{width}}  {a:6.2f} %")
    return 0


# ------------------------------------------------------------------- compare
def add_compare_parser(subparsers):
    p = subparsers.add_parser(
        "compare", help="several runs' accuracies in a table and their curves in one figure",
        description="Read the metrics.json that `train --out DIR` writes for each run and "
                    "print one row per run (epochs, last and best accuracy per epoch, the "
                    "final test-time-augmented accuracy when the run made one); --plot also "
                    "draws their loss and accuracy curves on shared axes.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="a directory written by train --out (or its metrics.json)")
    p.add_argument("--labels", help="comma-separated names for the runs (default: the paths)")
    p.add_argument("--plot", metavar="PNG", help="write the curves to this file")
    p.set_defaults(func=run_compare)
    return p


def _load_history(path):
    import json
    import os
    file = os.path.join(path, "metrics.json") if os.path.isdir(path) else path
    try:
        with open(file) as f:
            history = json.load(f)
    except OSError as e:
        raise ValueError(f"{path}: cannot read {file} (expected a directory written by "
                         f"`train --out`): {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{file}: not a metrics.json written by `train` ({e})") from None
    if not isinstance(history, dict) or not isinstance(history.get("epochs"), list):
        raise ValueError(f"{file}: not a metrics.json written by `train` (no 'epochs' list)")
    return history


def _eval_name(history):
    """'validation' or 'test': the accuracy the run's epochs were evaluated on, or None."""
    for row in history["epochs"]:
        for key in row:
            if key.endswith("_acc") and key != "train_acc":
                return key[:-len("_acc")]
    return None


def run_compare(args):
    from .viz import plot_runs
    labels = args.labels.split(",") if args.labels else list(args.runs)
    if len(labels) != len(args.runs):
        print(f"error: --labels names {len(labels)} runs, {len(args.runs)} were given",
              file=sys.stderr)
        return 2
    try:
        histories = {label: _load_history(path) for label, path in zip(labels, args.runs)}
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    names = {_eval_name(h) for h in histories.values()} - {None}
    if len(names) > 1:
        print(f"error: the runs were evaluated on different splits ({', '.join(sorted(names))})",
              file=sys.stderr)
        return 2
    name = names.pop() if names else "validation"
    width = max(len(label) for label in labels)
    print(f"{'run':<{width}}  epochs  last {name}  best {name} (epoch)  final with TTA")
    for label, h in histories.items():
        accs = [(r[f"{name}_acc"], r["epoch"]) for r in h["epochs"] if f"{name}_acc" in r]
        last = f"{accs[-1][0]:.2f} %" if accs else "-"
        best = "{:.2f} % ({})".format(*max(accs)) if accs else "-"
        final = h.get("final", {})
        tta = final.get(f"{name}_tta_acc")
        tta = f"{tta:.2f} % (level {final.get('tta_level')})" if tta is not None else "-"
        print(f"{label:<{width}}  {len(h['epochs']):>6}  {last:>{len(name) + 5}}  "
              f"{best:>{len(name) + 13}}  {tta}")
    if args.plot:
        plot_runs(histories, args.plot, eval_name=name)
        print(f"curves: {args.plot}")
    return 0


COMMANDS = [add_train_parser, add_evaluate_parser, add_compare_parser, add_summary_parser,
            add_assignment_parser]
"""Registration functions, one per subcommand, in the order ``--help`` lists them."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minitorch_cnn",
        description="minitorch_cnn: convolutional networks in NumPy with explicit backward passes.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv=None):
    """Parse ``argv`` (default: sys.argv[1:]), run the subcommand, return its exit status."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
