"""airbench94_muon's first steps in a PyTorch twin beside ``--preset cifar10-muon`` (run by hand).

The faithfulness check of issue 27, as issue 17 did for airbench94: the same
images, batches and augmentation (our DataLoader), the same initial weights
(copied), and each side in its own terms.

* **Ours**: the preset's settings through the trainer's recipe functions
  (``make_loaders``, ``build_model``, ``prepare_model``, ``make_optimizer``,
  ``make_schedule``, ``start_epoch``) and the trainer's step, on the mean loss.
* **The twin**, written here from ``airbench94_muon.py``: its network (whitening
  conv, three conv-pool-BN-GELU groups, max-pool 3, ``head(x) / 256``), its Muon
  (Newton--Schulz in the run's dtype instead of bfloat16), its SGD parameter
  groups with the original's numbers (bias lr 0.053, head lr 0.67, weight decay
  2e-6 x batch / lr), the loss *summed* over the batch, its per-step rates
  ``initial_lr * (1 - step / T)`` and, for the whitening bias, ``(1 - step / W)``
  and a detached bias from step W on.

Both losses are printed per step (the twin's summed loss divided by the batch).
In float64 they should agree to many digits: a difference says the preset's
conversion or our Muon is not the original's.

    python benchmarks/muon_first_steps.py                      # synthetic, batch 100, float64
    python benchmarks/muon_first_steps.py --data cifar10 --data-dir DATA --batch 2000 \\
        --dtype float32 --steps 20

On synthetic data the default (600 images, 100 held out, batch 100: 5 steps per
epoch) makes 20 steps cover four epochs: the whitening bias's rate falling to 0
and its freezing at step 15, and the alternating flips.
"""
import argparse
import math
import os
import sys
import time

import torch  # first: its OpenMP runtime starts with the user's settings, not ours

os.environ.setdefault("MINITORCH_KERNELS", "numpy")  # no Numba in a torch process

import numpy as np  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from minitorch_cnn import compile as compile_model  # noqa: E402
from minitorch_cnn import nn  # noqa: E402
from minitorch_cnn.training import PRESETS, TrainConfig  # noqa: E402
from minitorch_cnn.training.recipe import (build_model, build_transform,  # noqa: E402
                                           make_loaders, make_optimizer, make_schedule,
                                           prepare_model, start_epoch)


# ------------------------------------------------------------------ the twin
class ConvGroup(torch.nn.Module):
    """conv -> max-pool 2 -> BN -> GELU -> conv -> BN -> GELU, as airbench's ConvGroup."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, padding="same", bias=False)
        self.pool = torch.nn.MaxPool2d(2)
        self.norm1 = torch.nn.BatchNorm2d(cout, eps=1e-12, momentum=1 - 0.6)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, padding="same", bias=False)
        self.norm2 = torch.nn.BatchNorm2d(cout, eps=1e-12, momentum=1 - 0.6)
        for norm in (self.norm1, self.norm2):
            norm.weight.requires_grad = False

    def forward(self, x):
        x = F.gelu(self.norm1(self.pool(self.conv1(x))))
        return F.gelu(self.norm2(self.conv2(x)))


class TwinNet(torch.nn.Module):
    """airbench94_muon's CifarNet."""

    def __init__(self, widths=(64, 256, 256)):
        super().__init__()
        self.whiten = torch.nn.Conv2d(3, 24, 2, padding=0, bias=True)
        self.whiten.weight.requires_grad = False
        self.group1 = ConvGroup(24, widths[0])
        self.group2 = ConvGroup(widths[0], widths[1])
        self.group3 = ConvGroup(widths[1], widths[2])
        self.head = torch.nn.Linear(widths[2], 10, bias=False)

    def forward(self, x, whiten_bias_grad=True):
        b = self.whiten.bias
        x = F.gelu(F.conv2d(x, self.whiten.weight, b if whiten_bias_grad else b.detach()))
        x = self.group3(self.group2(self.group1(x)))
        x = F.max_pool2d(x, 3).flatten(1)
        return self.head(x) / x.size(-1)


NAMES = {"stem.0": "whiten", "fc": "head"}
for _g in (1, 2, 3):
    NAMES.update({f"block{_g}.0": f"group{_g}.conv1", f"block{_g}.2": f"group{_g}.norm1",
                  f"block{_g}.4": f"group{_g}.conv2", f"block{_g}.5": f"group{_g}.norm2"})


def twin_key(key):
    """Our state_dict key -> the twin's: ``block2.5.running_mean`` -> ``group2.norm2.running_mean``."""
    module, _, leaf = key.rpartition(".")
    return f"{NAMES[module]}.{leaf}"


def copy_weights(ours, twin):
    """Our airbench94_muon's state (PyTorch layouts already) into the twin."""
    state = twin.state_dict()
    for key, value in ours.state_dict().items():
        state[twin_key(key)].copy_(torch.from_numpy(np.asarray(value)))


def zeropower(G, steps=3, eps=1e-7):
    """airbench's Newton-Schulz quintic, in G's dtype (the original: bfloat16)."""
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G / (G.norm() + eps)
    if G.size(0) > G.size(1):
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    if G.size(0) > G.size(1):
        X = X.T
    return X


class TwinMuon(torch.optim.Optimizer):
    """airbench94_muon's Muon: momentum (buffer from zero), Nesterov, the filter rescaled to
    norm sqrt(out), then the orthogonalised update."""

    def __init__(self, params, lr, momentum, nesterov=True, eps=1e-7):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p.grad))
                buf.mul_(group["momentum"]).add_(p.grad)
                g = p.grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
                p.mul_(len(p) ** 0.5 / p.norm())
                p.add_(zeropower(g.reshape(len(g), -1), eps=group["eps"]).view(g.shape),
                       alpha=-group["lr"])


def twin_optimizers(twin, batch_size):
    """airbench94_muon's two optimizers, its numbers, for the summed loss."""
    bias_lr, head_lr, wd = 0.053, 0.67, 2e-6 * batch_size
    filters = [p for p in twin.parameters() if p.ndim == 4 and p.requires_grad]
    norm_biases = [p for n, p in twin.named_parameters() if "norm" in n and p.requires_grad]
    sgd = torch.optim.SGD([dict(params=[twin.whiten.bias], lr=bias_lr, weight_decay=wd / bias_lr),
                           dict(params=norm_biases, lr=bias_lr, weight_decay=wd / bias_lr),
                           dict(params=[twin.head.weight], lr=head_lr, weight_decay=wd / head_lr)],
                          momentum=0.85, nesterov=True)
    muon = TwinMuon(filters, lr=0.24, momentum=0.6, nesterov=True)
    for opt in (sgd, muon):
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    return sgd, muon


# ------------------------------------------------------------------ the run
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="synthetic", choices=("synthetic", "cifar10"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--synthetic-size", type=int, default=600)
    ap.add_argument("--val-split", type=int, default=100)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    dtype = np.dtype(args.dtype)
    cfg = TrainConfig(**{**PRESETS["cifar10-muon"], "data": args.data, "data_dir": args.data_dir,
                         "synthetic_size": args.synthetic_size, "val_split": args.val_split,
                         "batch_size": args.batch, "seed": args.seed, "out": None,
                         "progress": False,
                         # the preset's SGD rate is 0.67 x 2000 for the mean over 2,000 images;
                         # at another batch the same steps need 0.67 x batch (its weight decay,
                         # 2e-6 x batch / (0.67 x batch), does not depend on the batch)
                         "lr": 0.67 * args.batch})

    loader, _, _ = make_loaders(cfg)
    spe = len(loader)
    ours = build_model(cfg, len(loader.dataset.classes))
    prepare_model(ours, cfg, loader.dataset, build_transform(cfg, loader.dataset)[1])
    ours.to(dtype)
    twin = TwinNet().to(torch.float64 if dtype == np.float64 else torch.float32)
    copy_weights(ours, twin)
    opt = make_optimizer(cfg, ours, spe)
    sched = make_schedule(cfg, opt, spe)
    # float32: the trainer's compiled path; float64: the teaching layers, which take any dtype
    net = compile_model(ours, input_grad=False) if dtype == np.float32 else ours
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    sgd, muon = twin_optimizers(twin, cfg.batch_size)
    total, whiten_steps = math.ceil(8 * spe), math.ceil(3 * spe)
    print(f"# airbench94_muon's first {args.steps} steps: --preset cifar10-muon against a "
          f"PyTorch twin ({torch.__version__}), {args.dtype}, data {args.data}, batch "
          f"{cfg.batch_size}, {spe} steps per epoch, T = {total}, W = {whiten_steps}")
    print(f"{'step':>4} {'epoch':>5} {'minitorch_cnn':>16} {'PyTorch twin':>16} {'rel. diff':>9}")
    step, diffs, t0 = 0, [], time.perf_counter()
    for epoch in range(math.ceil(args.steps / spe)):
        start_epoch(ours, cfg, epoch)
        for x, y in loader.iter_epoch(epoch):
            if step >= args.steps:
                break
            x = x.astype(dtype, copy=False)
            loss = criterion(net(x), y)                        # ours: the trainer's step
            net.backward(criterion.backward())
            opt.step()
            sched.step()
            ours.zero_grad()

            xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
            out = twin(xt, whiten_bias_grad=step < whiten_steps)
            summed = F.cross_entropy(out, torch.from_numpy(y.astype(np.int64)),
                                     label_smoothing=0.2, reduction="sum")
            summed.backward()
            for group in sgd.param_groups[:1]:
                group["lr"] = group["initial_lr"] * (1 - step / whiten_steps)
            for group in sgd.param_groups[1:] + muon.param_groups:
                group["lr"] = group["initial_lr"] * (1 - step / total)
            sgd.step()
            muon.step()
            twin.zero_grad(set_to_none=True)

            theirs = summed.item() / len(y)
            diffs.append(abs(loss - theirs) / abs(theirs))
            step += 1
            print(f"{step:>4} {epoch + 1:>5} {loss:>16.10f} {theirs:>16.10f} {diffs[-1]:>9.2e}",
                  flush=True)
    state = twin.state_dict()
    worst = max(float(np.max(np.abs(np.asarray(v, dtype=np.float64) -
                                    state[twin_key(k)].double().numpy())))
                for k, v in ours.state_dict().items())
    print(f"steps: {len(diffs)}; largest relative loss difference: first 5 steps "
          f"{max(diffs[:5]):.2e}, all {max(diffs):.2e}; largest weight/statistic difference "
          f"after the last step {worst:.2e}; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
