"""The command line: ``python -m minitorch_cnn <command> ...`` (or ``minitorch-cnn``).

Each subcommand is one ``add_<name>_parser(subparsers)`` function that
registers its arguments and sets ``func`` to the function that runs it
(``func(args) -> exit status``). To add a command (``train``,
``evaluate``, ...), write such a pair and append the registration function
to :data:`COMMANDS`.
"""
import argparse
import sys


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
    try:
        result = summary(model, shape)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result.table(depth=args.depth))
    return 0


COMMANDS = [add_summary_parser]
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
