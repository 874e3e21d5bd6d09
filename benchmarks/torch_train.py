"""Train a zoo model with PyTorch on exactly minitorch_cnn's data, recipe and initial weights.

The baseline of docs/results.md: the same CIFAR-10 split and batches (our
DataLoader, so the same order and the same crops and flips for a given
seed), the same initial weights (the model is built by minitorch_cnn and
copied with ``interop.to_torch_module``), the same optimizer settings, and
our learning-rate schedule applied step by step. Only the framework differs.

    python benchmarks/torch_train.py --preset cifar10 --model resnet50_layer4 \\
        --data-dir DATA --epochs 30 --max-epochs 2 --out runs/torch_seed

``--max-epochs`` (or ``--max-steps``) stops early while keeping the schedule of ``--epochs`` (so
the first epochs are comparable with a full minitorch_cnn run). Writes
metrics.csv/json and curves.png like the trainer, and prints the seed's log
lines with "[torch]" in front. Needs torch (``pip install -e .[torch]``).
Run it in its own process: torch is imported before minitorch_cnn, whose
kernels stay on the NumPy twins here, so Numba never loads beside torch.
PyTorch runs with glibc's malloc as it comes (``MINITORCH_MALLOC=system``,
unless you set it): importing minitorch_cnn would otherwise hand PyTorch our
heap-reuse policy too, which made this script's FastNet steps 1.6x faster
(457 against 283 images/s, 2026-11-30): PyTorch's CPU allocator returns large
tensors to the OS just as glibc does for us. ``MINITORCH_MALLOC=reuse`` shows
PyTorch with the same policy as minitorch_cnn.
"""
import argparse
import math
import os
import sys
import time

import torch  # first: its OpenMP runtime starts with the user's settings, not ours

os.environ.setdefault("MINITORCH_KERNELS", "numpy")  # no Numba in a torch process
os.environ.setdefault("MINITORCH_MALLOC", "system")   # PyTorch as users run it

import numpy as np  # noqa: E402

from minitorch_cnn import interop, models  # noqa: E402
from minitorch_cnn.cli import _train_config, add_train_parser  # noqa: E402
from minitorch_cnn.training.trainer import (make_loaders, make_schedule,  # noqa: E402
                                            prepare_model, write_metrics)


def to_torch(x, y, device):
    """An NHWC float32 numpy batch -> NCHW tensor on ``device``, labels as int64."""
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)
    return xt, torch.from_numpy(y.astype(np.int64)).to(device)


def evaluate(model, loader, device, tta=False):
    """Accuracy (%) in eval mode; ``tta``: sum the logits of each image and its mirror (as ours)."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            xt, yt = to_torch(x, y, device)
            logits = model(xt)
            if tta:
                logits = logits + model(xt.flip(3))  # NCHW: W is dim 3
            correct += int((logits.argmax(1) == yt).sum())
            total += len(y)
    model.train()
    return 100.0 * correct / max(total, 1)


class _LR:
    """What our schedules drive: an object with an ``lr``."""

    def __init__(self, lr):
        self.lr = lr


def main(argv=None):
    parser = argparse.ArgumentParser(prog="benchmarks/torch_train.py")
    p = add_train_parser(parser.add_subparsers(dest="command", required=True))
    p.description = __doc__.split("\n\n")[0] + " Flags as `python -m minitorch_cnn train`."
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--max-epochs", type=int, default=0,
                   help="stop after this many epochs, keeping the schedule of --epochs")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    cfg = _train_config(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    log = lambda line: print(f"[torch] {line}", flush=True)  # noqa: E731

    loader, eval_loader, eval_name = make_loaders(cfg)  # the trainer's batches, exactly
    ours = models.get_model(cfg.model, num_classes=len(loader.dataset.classes),
                            rng=np.random.default_rng(cfg.seed))
    prepare_model(ours, cfg, loader.dataset, eval_loader.transform)
    model = interop.to_torch_module(ours).to(device).train()
    # our per-parameter lr_scale as parameter groups: lr * s, weight decay / s (see Parameter)
    scales = {name: p.lr_scale for name, p in ours.named_parameters()}
    groups = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault(scales[name], []).append(p)
    del ours
    opt_cls, kw = (torch.optim.SGD, dict(momentum=cfg.momentum, nesterov=cfg.nesterov)) \
        if cfg.optimizer == "sgd" else (torch.optim.Adam, {})
    opt = opt_cls([dict(params=ps, scale=s, weight_decay=cfg.weight_decay / s if s else 0.0)
                   for s, ps in groups.items()], lr=cfg.lr, **kw)
    lr = _LR(cfg.lr)
    sched = make_schedule(cfg, lr, len(loader))
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    os.makedirs(cfg.out, exist_ok=True)
    log(f"{cfg.model} on {args.device} ({torch.get_num_threads()} threads), torch "
        f"{torch.__version__}, {len(loader)} steps/epoch")
    history = {"step_loss": [], "epochs": []}
    last = min(cfg.epochs, args.max_epochs or cfg.epochs)
    for epoch in range(last):
        t0, seen, correct, losses = time.perf_counter(), 0, 0, []
        for step, (x, y) in enumerate(loader.iter_epoch(epoch), start=1):
            xt, yt = to_torch(x, y, device)
            for group in opt.param_groups:
                group["lr"] = lr.lr * group["scale"]
            logits = model(xt)
            loss = criterion(logits, yt)
            opt.zero_grad(set_to_none=False)
            loss.backward()
            opt.step()
            sched.step()
            value = loss.item()
            if not math.isfinite(value):
                raise SystemExit(f"[torch] loss became {value} at epoch {epoch + 1}, step {step}")
            losses.append(value)
            correct += int((logits.argmax(1) == yt).sum())
            seen += len(y)
            if step % cfg.log_every == 0 or step == len(loader):
                log(f"Epoch [{epoch + 1}/{cfg.epochs}]. Step [{step}/{len(loader)}] "
                    f"Loss: {np.mean(losses[-cfg.log_every:]):.4f}")
            if cfg.max_steps and epoch * len(loader) + step >= cfg.max_steps:
                break
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        acc = evaluate(model, eval_loader, device, tta=cfg.tta)
        history["step_loss"] += losses
        history["epochs"].append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                                  "train_acc": 100.0 * correct / seen, f"{eval_name}_acc": acc,
                                  "lr": lr.lr, "seconds": seconds, "images_per_s": seen / seconds})
        log(f"Epoch [{epoch + 1}/{cfg.epochs}] done in {seconds:.1f} s ({seen / seconds:.0f} "
            f"images/s): train loss {np.mean(losses):.4f}, {eval_name} accuracy {acc:.2f} %")
        write_metrics(cfg.out, history, eval_name)
        if cfg.max_steps and (epoch + 1) * len(loader) >= cfg.max_steps:
            break
    return history


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
