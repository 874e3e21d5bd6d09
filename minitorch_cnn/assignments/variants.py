"""The ``variants`` assignment: layers the library does not have, so its source does not solve them.

The reference solutions live in ``minitorch_cnn/assignments/solutions/``,
which a student copy does not contain; the student gets
``minitorch_cnn/exercises/dilated_conv.py`` and ``.../group_norm.py``.
"""
import numpy as np

from .common import border_mask_for, normal
from .compare import Expected, overlap_mask
from .tasks import Case, Task

DILATED = [  # name, x shape, out, kernel, stride, padding, dilation
    ("3x3, dilation 2, padding 2", (2, 7, 7, 3), 4, 3, 1, 2, 2),
    ("3x2 kernel, stride (2, 1), padding (2, 1), dilation (2, 3), non-square",
     (2, 9, 7, 2), 3, (3, 2), (2, 1), (2, 1), (2, 3)),
    ("dilation 1 (an ordinary convolution), stride 2", (1, 6, 5, 2), 2, 3, 2, 1, 1),
]


def run_dilated(mod, shape, out_channels, kernel, stride, padding, dilation, seed=0,
                backward=False):
    conv = mod.DilatedConv2d(shape[3], out_channels, kernel, stride=stride, padding=padding,
                             dilation=dilation, dtype=np.float64, rng=np.random.default_rng(seed))
    y = conv(normal(seed + 1, *shape))
    if not backward:
        return {"y": y}
    dx = conv.backward(normal(seed + 2, *np.shape(y)))
    return {"dx": dx, "dW": conv.weight.grad.copy(), "db": conv.bias.grad.copy()}


def explain_dilated(mod, params, v):
    if "dx" not in v:
        return {}
    from ..nn._checks import pair
    k, s, p, d = (pair(params[n], n, "x") for n in ("kernel", "stride", "padding", "dilation"))
    ek = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d))
    return {"dx": Expected(v["dx"], mistakes=[
        ("every tap must add its G W[:, :, p, q] onto the pixels it read (`+=`); with `=` "
         "the last tap overwrites the others", _explain_dilated_dx_assigned(mod, params))], masks=[
        ("the pixels that several taps or windows share -- their contributions add up (`+=`)",
         overlap_mask(params["shape"], ek[0], ek[1], s[0], s[1], p[0], p[1])),
        ("the pixels next to the border -- crop the padding off",
         border_mask_for(params["shape"], ek[0], ek[1], p[0], p[1]))])}


def _explain_dilated_dx_assigned(mod, params):
    """dx as a backward that writes each tap's share with `=` would return it."""
    p = dict(params)
    conv = mod.DilatedConv2d(p["shape"][3], p["out_channels"], p["kernel"], stride=p["stride"],
                             padding=p["padding"], dilation=p["dilation"], dtype=np.float64,
                             rng=np.random.default_rng(p.get("seed", 0)))
    x = normal(p.get("seed", 0) + 1, *p["shape"])
    y = conv(x)
    g = normal(p.get("seed", 0) + 2, *y.shape)
    h, w = x.shape[1:3]
    ph, pw = conv.padding
    _, _, taps = conv._taps(h, w)
    dx_pad = np.zeros((x.shape[0], h + 2 * ph, w + 2 * pw, x.shape[3]))
    for a, b, rows, cols in taps:
        dx_pad[:, rows, cols, :] = g @ conv.weight.data[:, :, a, b]
    return dx_pad[:, ph:ph + h, pw:pw + w, :]


def _dilated_cases():
    return [Case(n, dict(shape=s, out_channels=o, kernel=k, stride=st, padding=p, dilation=d,
                         seed=5 * i)) for i, (n, s, o, k, st, p, d) in enumerate(DILATED)]


def _hidden_dilated(rng):
    out = []
    for _ in range(2):
        k, d, s = int(rng.integers(2, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
        p = int(rng.integers(0, d + 1))
        ek = d * (k - 1) + 1
        shape = (2, int(rng.integers(ek, ek + 5)), int(rng.integers(ek, ek + 5)), int(rng.integers(1, 4)))
        out.append(Case(f"random {k}x{k}, dilation {d}, stride {s}, padding {p} on "
                        f"{shape[1]}x{shape[2]}",
                        dict(shape=shape, out_channels=int(rng.integers(1, 4)), kernel=k, stride=s,
                             padding=p, dilation=d, seed=int(rng.integers(1 << 30)))))
    return out


GROUPS = [("2 groups of 3 channels, 4x5", (2, 4, 5, 6), 2),
          ("1 group (LayerNorm over H, W, C)", (3, 3, 2, 4), 1),
          ("4 groups of 1 channel (InstanceNorm)", (2, 3, 3, 4), 4)]


def run_gn(mod, shape, groups, seed=0, backward=False):
    gn = mod.GroupNorm(groups, shape[3], dtype=np.float64)
    r = np.random.default_rng(seed)
    gn.weight.data[...] = r.uniform(0.5, 1.5, shape[3])
    gn.bias.data[...] = r.standard_normal(shape[3])
    y = gn(normal(seed + 1, *shape) * 1.5 + 0.3)
    if not backward:
        return {"y": y}
    dx = gn.backward(normal(seed + 2, *shape))
    return {"dx": dx, "dgamma": gn.weight.grad.copy(), "dbeta": gn.bias.grad.copy()}


def explain_gn(mod, params, v):
    n, h, w, c = params["shape"]
    m = h * w * c // params["groups"]
    key = "dx" if "dx" in v else "y"
    return {key: Expected(v[key], factors=[("a missing 1/M (M values per group)", m),
                                           ("a missing 1/M (M values per group)", 1.0 / m)])}


def _gn_cases():
    return [Case(n, dict(shape=s, groups=g, seed=i)) for i, (n, s, g) in enumerate(GROUPS)]


def _hidden_gn(rng):
    out = []
    for _ in range(2):
        g = int(rng.integers(1, 4))
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(2, 5)),
                 g * int(rng.integers(1, 4)))
        out.append(Case(f"random {shape}, {g} groups", dict(shape=shape, groups=g,
                                                            seed=int(rng.integers(1 << 30)))))
    return out


def _backward(run):
    return lambda mod, **kw: run(mod, backward=True, **kw)


TASKS = [
    Task("dilated_conv2d_forward", "Dilated Conv2d: forward", 15,
         "assignments/solutions/dilated_conv.py", run_dilated, _dilated_cases(),
         doc="docs/layers/conv2d.md",
         question="y = b + sum over taps (p, q) of X_pq W[:, :, p, q]^T, the taps d pixels apart.",
         hidden=_hidden_dilated),
    Task("dilated_conv2d_backward", "Dilated Conv2d: backward", 20,
         "assignments/solutions/dilated_conv.py", _backward(run_dilated), _dilated_cases(),
         explain=explain_dilated, doc="docs/layers/conv2d.md",
         question="dW[:, :, p, q] = G^T X_pq, db = sum G, and dx: every tap adds G W[:, :, p, q] "
                  "back onto the pixels it read.",
         hidden=_hidden_dilated),
    Task("group_norm_forward", "GroupNorm: forward", 15, "assignments/solutions/group_norm.py",
         run_gn, _gn_cases(), explain=explain_gn, doc="docs/layers/batchnorm.md",
         question="Normalise each sample over each group of C/G channels (and H, W).",
         hidden=_hidden_gn),
    Task("group_norm_backward", "GroupNorm: backward", 20, "assignments/solutions/group_norm.py",
         _backward(run_gn), _gn_cases(), explain=explain_gn, doc="docs/layers/batchnorm.md",
         question="BatchNorm's compact backward, with the sums taken over one sample's group.",
         hidden=_hidden_gn),
]

for _t in TASKS:
    if _t.name.endswith("_backward"):
        _t.uses = (_t.name.replace("_backward", "_forward"),)
