"""The ``layers`` assignment: each layer's forward and backward, in the order the docs teach them.

Each check function takes the task's module (``nn/linear.py``,
``kernels/reference.py``, ...) and reaches the code under test through it.

Every check runs in float64 with a random upstream gradient (an all-ones one
lets a wrong BatchNorm or softmax backward pass) and compares with the
reference implementation, which the test suite proves equal to PyTorch.
"""
import numpy as np

from .common import border_mask_for, normal
from .compare import Expected, overlap_mask
from .tasks import Case, Task


# ------------------------------------------------------------------ Linear
def run_linear(mod, n, i, o, bias=True, seed=0, backward=False):
    layer = mod.Linear(i, o, bias=bias, dtype=np.float64, rng=np.random.default_rng(seed))
    x = normal(seed + 1, n, i)
    y = layer(x)
    if not backward:
        return {"y": y}
    g = normal(seed + 2, n, o)
    out = {"dx": layer.backward(g), "dW": layer.weight.grad.copy()}
    if bias:
        out["db"] = layer.bias.grad.copy()
    layer(x)
    layer.backward(g)
    out["dW after a second backward"] = layer.weight.grad.copy()
    return out


def run_linear_backward(mod, **kw):
    return run_linear(mod, backward=True, **kw)


def explain_linear_backward(mod, params, v):
    return {"dW after a second backward": Expected(
        v["dW after a second backward"],
        mistakes=[("a second backward must add to .grad (+=), not overwrite it", v["dW"])])}


def _hidden_linear(rng):
    return [Case(f"random {n}x{i} -> {o}", dict(n=n, i=i, o=o, seed=int(rng.integers(1 << 30))))
            for n, i, o in rng.integers(1, 9, size=(2, 3))]


# -------------------------------------------------------------------- ReLU
def _relu_input(shape, seed):
    x = np.round(normal(seed, *shape), 1)          # rounding puts exact zeros in x
    x.flat[::7] = 0.0
    return x


def run_relu(mod, shape, seed=0):
    layer = mod.ReLU()
    y = layer(_relu_input(shape, seed))
    return {"y": y, "dx": layer.backward(normal(seed + 1, *shape))}


def explain_relu(mod, params, v):
    seed = params.get("seed", 0)
    g, x = normal(seed + 1, *params["shape"]), _relu_input(params["shape"], seed)
    return {"dx": Expected(v["dx"], mistakes=[
        ("the gradient at exactly 0 is 0: pass it where x > 0, not x >= 0", g * (x >= 0))])}


# ---------------------------------------------------------------- cross-entropy
def run_ce(mod, n, k, smoothing=0.0, reduction="mean", scale=1.0, seed=0):
    logits = normal(seed, n, k) * scale
    targets = np.random.default_rng(seed + 1).integers(0, k, n)
    loss_fn = mod.CrossEntropyLoss(label_smoothing=smoothing, reduction=reduction)
    loss = loss_fn(logits, targets)
    grad = loss_fn.backward(0.7)
    return {"loss": np.float64(loss), "dlogits": grad}


def explain_ce(mod, params, v):
    n = params["n"]
    f = [("a missing mean over the batch (1/N)", n), ("divide by N once only", 1.0 / n),
         ("the upstream gradient multiplies the result", 1 / 0.7)]
    return {"dlogits": Expected(v["dlogits"], factors=f),
            "loss": Expected(v["loss"], factors=[("the loss is the mean over the batch", n),
                                                  ("the loss is the mean over the batch", 1.0 / n)])}


def _hidden_ce(rng):
    return [Case(f"random {n}x{k}, smoothing {s:.2f}", dict(n=int(n), k=int(k), smoothing=float(s),
                                                           seed=int(rng.integers(1 << 30))))
            for n, k, s in zip(rng.integers(2, 9, 2), rng.integers(2, 12, 2), rng.uniform(0, 0.3, 2))]


# ------------------------------------------------------------- im2col / col2im
WINDOWS = [  # name, x shape, kh, kw, sh, sw, ph, pw
    ("3x3, stride 1, no padding", (2, 5, 5, 3), 3, 3, 1, 1, 0, 0),
    ("3x3, stride 2, padding 1, non-square 7x5", (2, 7, 5, 2), 3, 3, 2, 2, 1, 1),
    ("2x3 kernel, stride (1, 2), padding (1, 0)", (1, 4, 6, 3), 2, 3, 1, 2, 1, 0),
]


def _window_cases(extra=()):
    return [Case(name, dict(shape=s, window=(kh, kw, sh, sw, ph, pw), seed=i))
            for i, (name, s, kh, kw, sh, sw, ph, pw) in enumerate(WINDOWS + list(extra))]


def _hidden_windows(rng, pool=False):
    cases = []
    for i in range(3):
        kh, kw = (int(v) for v in rng.integers(1, 4, 2))
        sh, sw = (int(v) for v in rng.integers(1, 3, 2))
        ph, pw = (int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1)))
        h, w = int(rng.integers(kh, 8)), int(rng.integers(kw, 8))
        shape = (int(rng.integers(1, 3)), h, w, int(rng.integers(1, 4)))
        cases.append(Case(f"random {kh}x{kw}/s({sh},{sw})/p({ph},{pw}) on {h}x{w}",
                          dict(shape=shape, window=(kh, kw, sh, sw, ph, pw),
                               seed=int(rng.integers(1 << 30)))))
    return cases


def run_im2col(mod, shape, window, seed=0):
    return {"cols": mod.im2col(normal(seed, *shape), *window)}


def explain_im2col(mod, params, v):
    kh, kw, sh, sw, ph, pw = params["window"]
    c = params["shape"][3]
    rows = v["cols"].shape[0]
    chw = v["cols"].reshape(rows, kh, kw, c).transpose(0, 3, 1, 2).reshape(rows, -1)
    return {"cols": Expected(v["cols"], mistakes=[
        ("each row must list the window in (kernel row, kernel column, channel) order, the "
         "channel fastest; this is (channel, row, column)", chw)])}


def run_col2im(mod, shape, window, seed=0):
    kh, kw, sh, sw, ph, pw = window
    n, h, w, c = shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    cols = normal(seed, n * oh * ow, kh * kw * c)
    return {"dx": mod.col2im(cols, shape, *window)}


def explain_col2im(mod, params, v):
    kh, kw, sh, sw, ph, pw = params["window"]
    return {"dx": Expected(v["dx"], masks=[
        ("the pixels that overlapping windows share -- their contributions must add up "
         "(`+=`), not overwrite each other (`=`)", overlap_mask(params["shape"], *params["window"])),
        ("the pixels next to the border -- look at how the padding is cropped off",
         border_mask_for(params["shape"], kh, kw, ph, pw))])}


# ----------------------------------------------------------------- Conv2d
CONVS = [  # name, x shape, out channels, kernel, stride, padding, bias
    ("3x3, stride 1, padding 1", (2, 5, 5, 3), 4, 3, 1, 1, True),
    ("3x3, stride 2, padding 1, non-square 7x6", (2, 7, 6, 2), 3, 3, 2, 1, True),
    ("2x3 kernel, stride (2, 1), padding (1, 0)", (1, 5, 6, 2), 3, (2, 3), (2, 1), (1, 0), True),
    ("1x1, stride 2, no bias", (2, 5, 4, 3), 2, 1, 2, 0, False),
]


def run_conv(mod, shape, out_channels, kernel, stride, padding, bias, seed=0, backward=True):
    conv = mod.Conv2d(shape[3], out_channels, kernel, stride=stride, padding=padding, bias=bias,
                     dtype=np.float64, rng=np.random.default_rng(seed))
    x = normal(seed + 1, *shape)
    y = conv(x)
    if not backward:
        return {"y": y}
    dx = conv.backward(normal(seed + 2, *y.shape))
    out = {"dx": dx, "dW": conv.weight.grad.copy()}
    if bias:
        out["db"] = conv.bias.grad.copy()
    return out


def _conv_cases():
    return [Case(name, dict(shape=s, out_channels=o, kernel=k, stride=st, padding=p, bias=b,
                            seed=10 * i))
            for i, (name, s, o, k, st, p, b) in enumerate(CONVS)]


def _hidden_conv(rng):
    cases = []
    for c in _hidden_windows(rng):
        kh, kw, sh, sw, ph, pw = c.params["window"]
        cases.append(Case(c.name, dict(shape=c.params["shape"], out_channels=int(rng.integers(1, 4)),
                                       kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                                       bias=bool(rng.integers(0, 2)), seed=c.params["seed"])))
    return cases


def explain_conv_forward(mod, params, v):
    from .common import padded_outputs
    from ..nn._checks import pair
    k, s, p = (pair(params[n], n, "Conv2d") for n in ("kernel", "stride", "padding"))
    return {"y": Expected(v["y"], masks=[
        ("the outputs whose window reaches into the padding -- pad the input with zeros",
         padded_outputs(params["shape"], v["y"].shape, k, s, p))])}


def explain_conv_backward(mod, params, v):
    from ..nn._checks import pair
    (kh, kw), (ph, pw) = pair(params["kernel"], "k", "Conv2d"), pair(params["padding"], "p", "Conv2d")
    return {"dx": Expected(v["dx"], masks=[
        ("the pixels next to the border -- look at the padding (col2im onto the padded "
         "image, then crop it off)", border_mask_for(params["shape"], kh, kw, ph, pw))])}


# ------------------------------------------------------------------- pools
POOLS = [  # name, x shape, kernel, stride, padding
    ("2x2, stride 2 (no overlap)", (2, 6, 4, 3), 2, 2, 0),
    ("3x3, stride 2 (overlapping, the seed's stem)", (2, 7, 9, 2), 3, 2, 0),
    ("3x3, stride 1, padding 1 (heavy overlap)", (1, 5, 4, 2), 3, 1, 1),
]


def run_pool(mod, kind, shape, kernel, stride, padding, seed=0):
    layer = getattr(mod, kind)(kernel, stride=stride, padding=padding)
    x = normal(seed, *shape)
    y = layer(x)
    return {"dx": layer.backward(normal(seed + 1, *y.shape))}


def explain_pool(mod, params, v):
    k, s, p = params["kernel"], params["stride"], params["padding"]
    masks = [("the pixels that overlapping windows share -- the gradients of all the windows "
              "a pixel belongs to add up (`+=`, `np.add.at`), they do not overwrite (`=`)",
              overlap_mask(params["shape"], k, k, s, s, p, p)),
             ("the pixels next to the border -- padding counts in the window's size",
              border_mask_for(params["shape"], k, k, p, p))]
    return {"dx": Expected(v["dx"], masks=masks,
                           factors=[("every pixel of a window gets dy / (kh kw)", 1.0 / (k * k)),
                                    ("every pixel of a window gets dy / (kh kw)", k * k)])}


def _pool_cases(kind):
    return [Case(name, dict(kind=kind, shape=s, kernel=k, stride=st, padding=p, seed=i))
            for i, (name, s, k, st, p) in enumerate(POOLS)]


def _hidden_pool(kind):
    def gen(rng):
        out = []
        for _ in range(2):
            k = int(rng.integers(2, 4))
            s = int(rng.integers(1, k + 1))
            p = int(rng.integers(0, k // 2 + 1))
            shape = (int(rng.integers(1, 3)), int(rng.integers(k, 9)), int(rng.integers(k, 9)),
                     int(rng.integers(1, 4)))
            out.append(Case(f"random {k}x{k}/s{s}/p{p} on {shape[1]}x{shape[2]}",
                            dict(kind=kind, shape=shape, kernel=k, stride=s, padding=p,
                                 seed=int(rng.integers(1 << 30)))))
        return out
    return gen


# --------------------------------------------------------------- BatchNorm2d
def _bn(mod, shape, momentum, seed):
    bn = mod.BatchNorm2d(shape[3], momentum=momentum, dtype=np.float64)
    r = np.random.default_rng(seed)
    bn.weight.data[...] = r.uniform(0.5, 1.5, shape[3])
    bn.bias.data[...] = r.standard_normal(shape[3])
    return bn


def run_bn_forward(mod, shape, momentum=0.1, steps=1, seed=0):
    bn = _bn(mod, shape, momentum, seed)
    for s in range(steps):
        x = normal(seed + 1 + s, *shape) * 2.0 + 0.5
        y = bn(x)
    bn.eval()
    y_eval = bn(normal(seed + 99, *shape))
    return {"y (training)": y, "running_mean": bn.running_mean.copy(),
            "running_var": bn.running_var.copy(),
            "num_batches_tracked": int(bn.num_batches_tracked), "y (eval)": y_eval}


def explain_bn_forward(mod, params, v):
    shape, steps, momentum = params["shape"], params.get("steps", 1), params.get("momentum", 0.1)
    m = shape[0] * shape[1] * shape[2]
    # what a biased running variance gives, and a normalisation by the unbiased one
    rv, xs = np.ones(shape[3]), []
    for s in range(steps):
        x = normal(params.get("seed", 0) + 1 + s, *shape) * 2.0 + 0.5
        xs.append(x)
        f = 1.0 / (s + 1) if momentum is None else momentum
        rv = (1 - f) * rv + f * x.reshape(-1, shape[3]).var(axis=0)
    bn = _bn(mod, shape, momentum, params.get("seed", 0))
    x = xs[-1].reshape(-1, shape[3])
    y_unb = ((x - x.mean(0)) / np.sqrt(x.var(0, ddof=1) + bn.eps) * bn.weight.data +
             bn.bias.data).reshape(shape)
    return {"running_var": Expected(v["running_var"], mistakes=[
                ("the running variance keeps the unbiased estimate, var * M / (M - 1)", rv)]),
            "y (training)": Expected(v["y (training)"], mistakes=[
                ("normalise with the biased variance (divide by M); only running_var keeps "
                 "the unbiased one", y_unb)], factors=[("M / (M - 1)", m / (m - 1))])}


def run_bn_backward(mod, shape, seed=0):
    bn = _bn(mod, shape, 0.1, seed)
    x = normal(seed + 1, *shape) * 2.0 + 0.5
    g = normal(seed + 2, *shape)
    bn(x)
    dx = bn.backward(g)
    out = {"dx (training)": dx, "dgamma": bn.weight.grad.copy(), "dbeta": bn.bias.grad.copy()}
    bn.eval()
    bn(x)
    out["dx (eval)"] = bn.backward(g)
    return out


def explain_bn_backward(mod, params, v):
    shape = params["shape"]
    m = shape[0] * shape[1] * shape[2]
    bn = _bn(mod, shape, 0.1, params.get("seed", 0))
    x = normal(params.get("seed", 0) + 1, *shape) * 2.0 + 0.5
    g = normal(params.get("seed", 0) + 2, *shape)
    var = x.reshape(-1, shape[3]).var(0)
    frozen = g * bn.weight.data / np.sqrt(var + bn.eps)
    return {"dx (training)": Expected(v["dx (training)"], mistakes=[
        ("in training the batch mean and variance depend on x too: dx has two more terms",
         frozen)], factors=[("a missing 1/M", m), ("a missing 1/M", 1.0 / m)])}


BN_SHAPES = [("4x3x5x3", (4, 3, 5, 3)), ("2x4x4x5", (2, 4, 4, 5))]


def _hidden_bn(rng, **extra):
    return [Case(f"random {s}", dict(shape=tuple(int(v) for v in s), seed=int(rng.integers(1 << 30)),
                                     **extra))
            for s in [rng.integers(2, 5, 4) for _ in range(2)]]


# ---------------------------------------------------------------- SGD
def run_sgd(mod, momentum, nesterov=False, dampening=0.0, weight_decay=0.0, steps=4, seed=0):
    from ..nn import Parameter
    r = np.random.default_rng(seed)
    ps = [Parameter(r.standard_normal((3, 2))), Parameter(r.standard_normal(4))]
    opt = mod.SGD(ps, lr=0.1, momentum=momentum, nesterov=nesterov, dampening=dampening,
                    weight_decay=weight_decay)
    trail = []
    for _ in range(steps):
        for p in ps:
            p.grad[...] = r.standard_normal(p.data.shape)
        opt.step()
        trail.append(np.concatenate([p.data.ravel() for p in ps]))
    return {"parameters after each step": np.array(trail),
            "momentum buffers": np.concatenate([opt.state[i]["momentum_buffer"].ravel()
                                                for i in range(len(ps))])}


SGD_CASES = [Case("momentum 0.9", dict(momentum=0.9)),
             Case("Nesterov, momentum 0.9", dict(momentum=0.9, nesterov=True, seed=1)),
             Case("momentum 0.8, dampening 0.3, weight decay 0.01",
                  dict(momentum=0.8, dampening=0.3, weight_decay=0.01, seed=2))]


def _hidden_sgd(rng):
    return [Case(f"random momentum {m:.2f}, weight decay {wd:.3f}",
                 dict(momentum=float(m), weight_decay=float(wd), nesterov=bool(n), steps=5,
                      seed=int(rng.integers(1 << 30))))
            for m, wd, n in zip(rng.uniform(0.1, 0.99, 2), rng.uniform(0, 0.05, 2), (0, 1))]


# ------------------------------------------------------------------- tasks
def _conv_forward(mod, **kw):
    return run_conv(mod, backward=False, **kw)


_LINEAR_CASES = [Case("4 x 5 -> 3", dict(n=4, i=5, o=3)),
                 Case("1 x 7 -> 2, no bias", dict(n=1, i=7, o=2, bias=False, seed=5))]

TASKS = [
    Task("linear_forward", "Linear: forward", 5, "nn/linear.py", run_linear, _LINEAR_CASES,
         doc="docs/layers/linear.md", question="Compute y = x W^T + b.",
         hidden=_hidden_linear),
    Task("linear_backward", "Linear: backward", 5, "nn/linear.py", run_linear_backward, _LINEAR_CASES[:1] + [
        Case("3 x 4 -> 6", dict(n=3, i=4, o=6, seed=7))], explain=explain_linear_backward,
         doc="docs/layers/linear.md",
         question="Return dx = G W and add dW = G^T x, db = sum_n G[n] into the gradients.",
         hidden=_hidden_linear),
    Task("relu", "ReLU: forward and backward", 5, "nn/activation.py", run_relu,
         [Case("3x4x4x2 with exact zeros", dict(shape=(3, 4, 4, 2))),
          Case("a 2-D input", dict(shape=(5, 6), seed=3))], explain=explain_relu,
         doc="docs/layers/relu.md", question="y = max(x, 0); dx = dy [x > 0].",
         hidden=lambda rng: [Case("random", dict(shape=tuple(int(v) for v in rng.integers(1, 6, 4)),
                                                 seed=int(rng.integers(1 << 30))))]),
    Task("cross_entropy", "Softmax cross-entropy: loss and gradient", 10, "nn/loss.py", run_ce,
         [Case("8 x 5", dict(n=8, k=5)),
          Case("label smoothing 0.1", dict(n=6, k=4, smoothing=0.1, seed=1)),
          Case("reduction='sum'", dict(n=5, k=3, reduction="sum", seed=2)),
          Case("large logits (stability)", dict(n=4, k=6, scale=800.0, seed=3))],
         explain=explain_ce, doc="docs/layers/cross_entropy.md",
         question="The mean softmax cross-entropy and dL/dlogits = (softmax - q) / N.",
         hidden=_hidden_ce),
    Task("im2col", "im2col (the NumPy twin)", 10, "kernels/reference.py", run_im2col,
         _window_cases(), explain=explain_im2col, doc="docs/layers/conv2d.md",
         question="Unfold every window of x into one row of a matrix.",
         hidden=_hidden_windows),
    Task("col2im", "col2im (the NumPy twin)", 10, "kernels/reference.py", run_col2im,
         _window_cases(), explain=explain_col2im, doc="docs/layers/conv2d.md",
         question="The adjoint of im2col: add every row back onto the pixels it came from.",
         hidden=_hidden_windows),
    Task("conv2d_forward", "Conv2d: forward", 10, "nn/conv.py", _conv_forward, _conv_cases(),
         explain=explain_conv_forward, doc="docs/layers/conv2d.md",
         question="Y = im2col(x) W_col + b, reshaped to NHWC.", hidden=_hidden_conv),
    Task("conv2d_backward", "Conv2d: backward", 15, "nn/conv.py", run_conv, _conv_cases(),
         explain=explain_conv_backward, doc="docs/layers/conv2d.md",
         question="dW_col = X_col^T G, db = sum of G, dx = col2im(G W_col^T).",
         hidden=_hidden_conv),
    Task("maxpool2d_backward", "MaxPool2d: backward", 10, "nn/pooling.py", run_pool,
         _pool_cases("MaxPool2d"), explain=explain_pool, doc="docs/layers/maxpool2d.md",
         question="Route each output's gradient to the pixel that won its window.",
         hidden=_hidden_pool("MaxPool2d")),
    Task("avgpool2d_backward", "AvgPool2d: backward", 5, "nn/pooling.py", run_pool,
         _pool_cases("AvgPool2d"), explain=explain_pool, doc="docs/layers/avgpool2d.md",
         question="Spread each output's gradient evenly over its window.",
         hidden=_hidden_pool("AvgPool2d")),
    Task("batchnorm2d_forward", "BatchNorm2d: forward (train, eval, running statistics)", 15,
         "nn/normalization.py", run_bn_forward,
         [Case(f"{n}, momentum 0.1", dict(shape=s, seed=i)) for i, (n, s) in enumerate(BN_SHAPES)]
         + [Case("momentum=None, 3 batches (cumulative average)",
                 dict(shape=(3, 2, 3, 4), momentum=None, steps=3, seed=7))],
         explain=explain_bn_forward, doc="docs/layers/batchnorm.md",
         question="Normalise with the batch statistics in training, the running ones in eval; "
                  "update the running mean and (unbiased) variance.",
         hidden=lambda rng: _hidden_bn(rng, steps=2)),
    Task("batchnorm2d_backward", "BatchNorm2d: backward", 15, "nn/normalization.py",
         run_bn_backward, [Case(n, dict(shape=s, seed=i)) for i, (n, s) in enumerate(BN_SHAPES)],
         explain=explain_bn_backward, doc="docs/layers/batchnorm.md",
         question="dbeta = sum G, dgamma = sum G x_hat, "
                  "dx = gamma / (M sqrt(var + eps)) (M G - dbeta - x_hat dgamma).",
         hidden=_hidden_bn),
    Task("sgd_momentum", "SGD with momentum: the update", 10, "optim/sgd.py", run_sgd,
         SGD_CASES, doc="docs/training.md",
         question="b <- mu b + (1 - dampening) g (b = g on the first step); "
                  "p <- p - lr (g + mu b if Nesterov else b).",
         hidden=_hidden_sgd),
]

# the tasks each one's checks run through (in a student copy, write those first)
USES = {"linear_backward": ("linear_forward",), "conv2d_forward": ("im2col",),
        "conv2d_backward": ("conv2d_forward", "im2col", "col2im"),
        "avgpool2d_backward": ("col2im",), "batchnorm2d_backward": ("batchnorm2d_forward",)}
for _t in TASKS:
    _t.uses = USES.get(_t.name, ())
