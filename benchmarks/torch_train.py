"""Train a zoo model with PyTorch on exactly minitorch_cnn's data, recipe and initial weights.

The baseline of docs/results.md: the same CIFAR-10 split and batches (our
DataLoader, so the same order and the same crops and flips for a given
seed), the same initial weights (the model is built by minitorch_cnn and
copied with ``interop.to_torch_module``), the same optimizer settings, and
our learning-rate schedule applied step by step. Only the framework differs.

    python benchmarks/torch_train.py --preset cifar10 --model resnet50_layer4 \\
        --data-dir DATA --epochs 30 --max-epochs 2 --out runs/torch_seed

``--max-epochs`` (or ``--max-steps``) stops early while keeping the schedule of ``--epochs`` (so
the first epochs are comparable with a full minitorch_cnn run). The airbench94 recipe of
``--preset cifar10-fast`` is here too, each part in PyTorch's own terms as airbench94.py
writes it: the whitening bias frozen after ``--whiten-bias-epochs`` (its gradient set to
None, so SGD skips it), the lookahead average (``lerp_`` on the state_dict's float
tensors every 5 steps, copied back, and again at every epoch's end), fractional epochs,
and the multi-view TTA (``flip(-1)``, ``F.pad(..., 'reflect')``) of the final evaluation;
the alternating flips and reflect-padded shifts come with our DataLoader.
``--optimizer muon``: airbench94_muon's Muon (benchmarks/muon_first_steps.py's
transcription) on the learnable 4-D filters, SGD on the rest, one schedule. Writes
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

from minitorch_cnn import interop, optim  # noqa: E402
from minitorch_cnn.training import TrainConfig  # noqa: E402
from minitorch_cnn.cli import _given_settings, add_train_parser  # noqa: E402
from minitorch_cnn.training import tta_level, write_metrics  # noqa: E402
from minitorch_cnn.training.recipe import (build_model, build_transform,  # noqa: E402
                                           make_loaders, make_schedule, prepare_model,
                                           total_steps)
from muon_first_steps import TwinMuon  # noqa: E402 -- airbench94_muon's Muon, transcribed


def to_torch(x, y, device):
    """An NHWC float32 numpy batch -> NCHW tensor on ``device``, labels as int64."""
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)
    return xt, torch.from_numpy(y.astype(np.int64)).to(device)


def tta_logits(model, xt, level):
    """airbench's test-time augmentation: 0 none, 1 mean with the mirror image, 2 also the
    one-pixel diagonal shifts (reflect padding), weighted 1/2, 1/4, 1/4."""
    if level == 0:
        return model(xt)
    mirror = 0.5 * model(xt) + 0.5 * model(xt.flip(-1))   # NCHW: W is the last dim
    if level == 1:
        return mirror
    h, w = xt.shape[2:]
    padded = torch.nn.functional.pad(xt, (1, 1, 1, 1), mode="reflect")
    shifted = [tta_logits(model, padded[:, :, i:i + h, i:i + w], 1) for i in (0, 2)]
    return 0.5 * mirror + 0.5 * torch.stack(shifted).mean(0)


def evaluate(model, loader, device, tta=0):
    """Accuracy (%) in eval mode with test-time augmentation level ``tta`` (as ours)."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            xt, yt = to_torch(x, y, device)
            logits = tta_logits(model, xt, int(tta))
            correct += int((logits.argmax(1) == yt).sum())
            total += len(y)
    model.train()
    return 100.0 * correct / max(total, 1)


class LookaheadState:
    """airbench94's lookahead: an average of the state_dict's float tensors, pulled toward
    the model with weight 1 - decay and copied back into it."""

    def __init__(self, model):
        self.ema = {k: v.clone() for k, v in model.state_dict().items()
                    if v.dtype.is_floating_point}

    def update(self, model, decay):
        state = model.state_dict()
        with torch.no_grad():
            for k, e in self.ema.items():
                e.lerp_(state[k], 1 - decay)
                state[k].copy_(e)


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
    cfg = TrainConfig(**_given_settings(args))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    log = lambda line: print(f"[torch] {line}", flush=True)  # noqa: E731

    loader, eval_loader, eval_name = make_loaders(cfg)  # the trainer's batches, exactly
    ours = build_model(cfg, len(loader.dataset.classes))
    prepare_model(ours, cfg, loader.dataset, build_transform(cfg, loader.dataset)[1])
    model = interop.to_torch_module(ours).to(device).train()
    # our per-parameter lr_scale as parameter groups: lr * s, weight decay / s (see Parameter)
    scales = {name: p.lr_scale for name, p in ours.named_parameters()}
    groups = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault(scales[name], []).append(p)
    whitening = getattr(ours, "whiten", False)
    filters = []
    if cfg.optimizer == "muon":                  # Muon on the filters, SGD on the rest
        if cfg.whiten_bias_schedule != "main":
            raise SystemExit("torch_train: --whiten-bias-schedule linear is not transcribed here; "
                             "benchmarks/airbench_original.py runs airbench94_muon itself")
        names = {id(p): n for n, p in ours.named_parameters()}
        chosen = {names[id(p)] for p in optim.muon_param_groups(ours)[0]}
        filters = [p for n, p in model.named_parameters() if n in chosen]
        groups = {s: [p for p in ps if all(p is not f for f in filters)]
                  for s, ps in groups.items()}
    del ours
    opt_cls, kw = (torch.optim.SGD, dict(momentum=cfg.momentum, nesterov=cfg.nesterov)) \
        if cfg.optimizer in ("sgd", "muon") else (torch.optim.Adam, {})
    opt = opt_cls([dict(params=ps, scale=s, weight_decay=cfg.weight_decay / s if s else 0.0)
                   for s, ps in groups.items() if ps], lr=cfg.lr, **kw)
    opts = [opt]
    if filters:                                  # one schedule: Muon's rate x the same factor
        opts.append(TwinMuon([dict(params=filters, scale=cfg.muon_lr / cfg.lr)], lr=cfg.muon_lr,
                             momentum=cfg.muon_momentum, nesterov=cfg.nesterov,
                             eps=1e-7 / cfg.batch_size))
    lr = _LR(cfg.lr)
    sched = make_schedule(cfg, lr, len(loader))
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    os.makedirs(cfg.out, exist_ok=True)
    log(f"{cfg.model} on {args.device} ({torch.get_num_threads()} threads), torch "
        f"{torch.__version__}, {len(loader)} steps/epoch")
    history = {"step_loss": [], "epochs": []}
    total = total_steps(cfg, len(loader))
    last = math.ceil(total / len(loader))
    last = min(last, args.max_epochs or last)
    whiten_bias = dict(model.named_parameters()).get("stem.0.bias") \
        if whitening and cfg.whiten_bias_epochs else None
    lookahead, done = None, 0
    for epoch in range(last):
        if whiten_bias is not None and epoch >= cfg.whiten_bias_epochs:
            whiten_bias.requires_grad_(False)
            whiten_bias.grad = None                    # SGD skips a parameter without a grad
        t0, seen, correct, losses = time.perf_counter(), 0, 0, []
        n_steps = min(len(loader), total - epoch * len(loader))
        for step, (x, y) in enumerate(loader.iter_epoch(epoch), start=1):
            xt, yt = to_torch(x, y, device)
            for group in (g for o in opts for g in o.param_groups):
                group["lr"] = lr.lr * group["scale"]
            logits = model(xt)
            loss = criterion(logits, yt)
            model.zero_grad(set_to_none=False)          # every optimizer's parameters
            loss.backward()
            for o in opts:
                o.step()
            sched.step()
            done += 1
            if cfg.lookahead and epoch >= cfg.lookahead_start and done % 5 == 0:
                if lookahead is None:
                    lookahead = LookaheadState(model)
                else:
                    lookahead.update(model, 0.95 ** 5 * (done / total) ** 3)
            value = loss.item()
            if not math.isfinite(value):
                raise SystemExit(f"[torch] loss became {value} at epoch {epoch + 1}, step {step}")
            losses.append(value)
            correct += int((logits.argmax(1) == yt).sum())
            seen += len(y)
            if step % cfg.log_every == 0 or step == n_steps:
                log(f"Epoch [{epoch + 1}/{cfg.epochs:g}]. Step [{step}/{n_steps}] "
                    f"Loss: {np.mean(losses[-cfg.log_every:]):.4f}")
            if step == n_steps or cfg.max_steps and epoch * len(loader) + step >= cfg.max_steps:
                break
        if lookahead is not None:
            lookahead.update(model, 1.0)               # the model evaluated is the average
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        acc = None if eval_loader is None else evaluate(model, eval_loader, device)
        history["step_loss"] += losses
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
               "train_acc": 100.0 * correct / seen}
        if acc is not None:
            row[f"{eval_name}_acc"] = acc
        history["epochs"].append({**row, "lr": lr.lr, "seconds": seconds,
                                  "images_per_s": seen / seconds})
        log(f"Epoch [{epoch + 1}/{cfg.epochs:g}] done in {seconds:.1f} s ({seen / seconds:.0f} "
            f"images/s): train loss {np.mean(losses):.4f}" +
            ("" if acc is None else f", {eval_name} accuracy {acc:.2f} %"))
        write_metrics(cfg.out, history, eval_name or "no evaluation")
        if cfg.max_steps and epoch * len(loader) + step >= cfg.max_steps:
            break
    level = tta_level(cfg)
    if eval_loader is not None:
        acc = evaluate(model, eval_loader, device, tta=level)
        history["final"] = {"tta_level": level, f"{eval_name}_tta_acc": acc}
        write_metrics(cfg.out, history, eval_name)
        log(f"Accuracy of the model on the {eval_name} images: {acc:.2f} % (test-time "
            f"augmentation level {level})")
    return history


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
