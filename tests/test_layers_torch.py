"""Parity with PyTorch: torch.nn.functional is an independent oracle for every layer.

Our activations are NHWC, PyTorch's NCHW: inputs are transposed on the way in
and outputs/gradients on the way back. Every test compares the forward output
and the gradients of the input and of every parameter, for a random upstream
gradient, in float64 (relative error <= 1e-8) and in float32 (<= 1e-4).
Shapes, strides, paddings and kernels are drawn by hypothesis; each test also
runs with both kernel backends (the ``backend`` fixture).

Relative error of a tensor = max|ours - torch| / max|torch| (see ``rel``).
"""
import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minitorch_cnn
from minitorch_cnn import nn

pytestmark = pytest.mark.torch

# float32 (derived): one layer, errors relative to the same computation on absolute
# values (check_against_torch), where a sum of n rounded terms is off by at most
# n * 2**-24 on each side; the longest sums here (hypothesis shapes) have n < 800 terms:
# 2 * 800 * 6e-8 = 1e-4. No training steps, no BLAS-dependent constant.
TOL = {np.float64: 1e-8, np.float32: 1e-4}
DTYPES = (np.float64, np.float32)
SETTINGS = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
seeds = st.integers(0, 2**32 - 1)


def rel(ours, ref, floor=0.0):
    """max|ours - ref| / max|ref| (0 when both are all zeros).

    `floor` is a lower bound for the denominator: the typical size of a
    quantity that can cancel to nearly zero by chance (see the BatchNorm test).
    """
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    diff = np.abs(ours - ref).max(initial=0.0)
    return float(diff / max(np.abs(ref).max(initial=0.0), np.abs(ours).max(initial=0.0),
                            floor, 1e-300))


def to_torch_layout(a):
    return a.transpose(0, 3, 1, 2) if a.ndim == 4 else a


def from_torch(t):
    a = t.detach().numpy()
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


def tensor(torch, a, requires_grad=False):
    """NHWC array -> NCHW tensor with freshly laid-out (canonical) strides.

    Not np.ascontiguousarray: for C = 1 it keeps the transposed view, whose
    strides (15, 1, 5, 1) torch also calls contiguous, but torch 2.13's oneDNN
    float32 convolution then reads garbage (1e21 where 1.0 was due) -- found by
    the conv parity test.
    """
    return torch.tensor(np.array(to_torch_layout(a), order="C", copy=True),
                        requires_grad=requires_grad)


def _run_torch(torch, torch_forward, x, params, g):
    """torch_forward on (x, params), backward with upstream g: {forward, input, <param>: array}."""
    xt = tensor(torch, x, requires_grad=True)
    pt = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    yt = torch_forward(xt, **pt)
    yt.backward(tensor(torch, g))
    return {"forward": from_torch(yt), "input": from_torch(xt.grad),
            **{k: t.grad.numpy() for k, t in pt.items()}}


def check_against_torch(torch, name, module, x, torch_forward, record_error, seed=0):
    """Run `module` and `torch_forward(x_t, **params_t)` in float64 and float32; compare everything.

    `module`'s parameters are handed to torch by name (weight, bias), so the
    two compute with identical numbers; the upstream gradient is random.
    float32 results are sums of many rounded terms, accurate relative to the
    size of those terms rather than to the sum, which can cancel to almost
    nothing by chance (a bias gradient sum(G) over a few positions): their
    error is measured against the same computation on absolute values.
    Returns the float64 errors.
    """
    errors64 = {}
    for dtype in DTYPES:
        m = copy.deepcopy(module).to(dtype)
        m.zero_grad()
        xd = x.astype(dtype)
        y = m(xd)
        g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
        ours = {"forward": y, "input": m.backward(g)}
        ours.update({k: p.grad for k, p in m.named_parameters()})
        params = {k: p.data for k, p in m.named_parameters()}
        ref = _run_torch(torch, torch_forward, xd, params, g)
        floors = {}
        if dtype is np.float32:
            abs_params = {k: np.abs(v).astype(np.float64) for k, v in params.items()}
            sizes = _run_torch(torch, torch_forward, np.abs(x), abs_params,
                               np.abs(g).astype(np.float64))
            floors = {k: np.abs(v).max(initial=0.0) for k, v in sizes.items()}
        assert set(ours) == set(ref)
        errors = {k: rel(ours[k], ref[k], floors.get(k, 0.0)) for k in ref}
        assert all(v.dtype == dtype for v in ours.values()), {k: v.dtype for k, v in ours.items()}
        assert max(errors.values()) <= TOL[dtype], f"{name} {np.dtype(dtype).name}: {errors}"
        if dtype is np.float64:
            errors64 = errors
            record_error(name, "torch64 fwd", errors["forward"])
            record_error(name, "torch64 grad", max(v for k, v in errors.items() if k != "forward"))
        else:
            record_error(name, "torch32 all", max(errors.values()))
    return errors64


# ---------------------------------------------------------------- strategies
@st.composite
def window_case(draw, max_k=4, pool=False):
    """Kernel, stride, padding and an image size the (padded) kernel fits in."""
    kh, kw = draw(st.integers(1, max_k)), draw(st.integers(1, max_k))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if pool:  # PyTorch: padding at most half the kernel
        ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    else:
        ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    return dict(n=n, h=h, w=w, c=c, k=(kh, kw), s=(sh, sw), p=(ph, pw))


# --------------------------------------------------------------------- Conv2d
@SETTINGS
@given(case=window_case(), out_channels=st.integers(1, 4), bias=st.booleans(), seed=seeds)
def test_conv2d_matches_torch(torch, backend, record_error, case, out_channels, bias, seed):
    rng = np.random.default_rng(seed)
    conv = nn.Conv2d(case["c"], out_channels, case["k"], case["s"], case["p"], bias=bias,
                     rng=rng, dtype=np.float64)
    x = rng.standard_normal((case["n"], case["h"], case["w"], case["c"]))

    def forward(xt, weight, bias=None):
        return torch.nn.functional.conv2d(xt, weight, bias, stride=case["s"], padding=case["p"])

    errors = check_against_torch(torch, "Conv2d", conv, x, forward, record_error, seed)
    assert set(errors) == {"forward", "input", "weight"} | ({"bias"} if bias else set())


@pytest.mark.parametrize("k, s, p, bias", [
    (3, 2, 1, True),            # stride 2 with padding 1
    (1, 2, 0, False),           # 1x1 stride 2, no bias (a ResNet shortcut)
    ((2, 3), (2, 1), (1, 0), True),  # non-square kernel and stride
])
def test_conv2d_fixed_cases_match_torch(torch, backend, record_error, k, s, p, bias):
    rng = np.random.default_rng(7)
    conv = nn.Conv2d(3, 5, k, s, p, bias=bias, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 7, 6, 3))  # non-square image

    def forward(xt, weight, bias=None):
        return torch.nn.functional.conv2d(xt, weight, bias, stride=s, padding=p)

    check_against_torch(torch, "Conv2d", conv, x, forward, record_error)


# -------------------------------------------------------------------- Linear
@SETTINGS
@given(n=st.integers(1, 5), fin=st.integers(1, 12), fout=st.integers(1, 8), bias=st.booleans(),
       seed=seeds)
def test_linear_matches_torch(torch, backend, record_error, n, fin, fout, bias, seed):
    rng = np.random.default_rng(seed)
    lin = nn.Linear(fin, fout, bias=bias, rng=rng, dtype=np.float64)
    x = rng.standard_normal((n, fin))
    errors = check_against_torch(torch, "Linear", lin, x, torch.nn.functional.linear,
                                 record_error, seed)
    assert set(errors) == {"forward", "input", "weight"} | ({"bias"} if bias else set())


@SETTINGS
@given(n=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 5), c=st.integers(1, 4),
       fout=st.integers(1, 5), seed=seeds)
def test_flatten_linear_after_nhwc_matches_torch_on_nchw(torch, backend, record_error,
                                                          n, h, w, c, fout, seed):
    """Same weights: our Flatten of NHWC feeds Linear what torch's Flatten of NCHW does."""
    rng = np.random.default_rng(seed)
    ours = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, fout, rng=rng, dtype=np.float64))
    theirs = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(c * h * w, fout)).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((n, h, w, c))
    g = rng.standard_normal((n, fout))
    y, dx = ours(x), ours.backward(g)
    xt = tensor(torch, x, requires_grad=True)
    yt = theirs(xt)
    yt.backward(torch.from_numpy(g))
    errs = [rel(y, yt.detach().numpy()), rel(dx, from_torch(xt.grad)),
            rel(ours[1].weight.grad, theirs[1].weight.grad.numpy()),
            rel(ours[1].bias.grad, theirs[1].bias.grad.numpy())]
    assert max(errs) <= 1e-8, errs
    record_error("Flatten", "torch64 fwd", errs[0])
    record_error("Flatten", "torch64 grad", max(errs[1:]))


# -------------------------------------------------------------- activations
@SETTINGS
@given(shape=st.sampled_from([(2, 3, 4, 5), (1, 1, 1, 1), (4, 7), (3, 2, 5, 1)]), seed=seeds)
def test_relu_matches_torch_including_zeros(torch, backend, record_error, shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x.reshape(-1)[::3] = 0.0  # ReLU'(0) = 0, as in PyTorch
    check_against_torch(torch, "ReLU", nn.ReLU(), x, torch.relu, record_error, seed)


def test_identity_matches_torch(torch, backend, record_error, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    check_against_torch(torch, "Identity", nn.Identity(), x, torch.nn.Identity(), record_error)


# ------------------------------------------------------------------- pooling
@SETTINGS
@given(case=window_case(pool=True), seed=seeds)
def test_maxpool2d_matches_torch(torch, backend, record_error, case, seed):
    x = np.random.default_rng(seed).standard_normal((case["n"], case["h"], case["w"], case["c"]))
    pool = nn.MaxPool2d(case["k"], case["s"], case["p"])

    def forward(xt):
        return torch.nn.functional.max_pool2d(xt, case["k"], case["s"], case["p"])

    check_against_torch(torch, "MaxPool2d", pool, x, forward, record_error, seed)


@pytest.mark.parametrize("k, s, p", [(3, 2, 1), (2, 1, 1), ((3, 2), (1, 2), (1, 0))])
def test_maxpool2d_overlapping_windows_and_ties_match_torch(torch, backend, record_error, k, s, p):
    """Overlapping windows and many ties (small integers): torch also routes to the first max."""
    x = np.random.default_rng(3).integers(-2, 3, size=(2, 7, 6, 3)).astype(np.float64)

    def forward(xt):
        return torch.nn.functional.max_pool2d(xt, k, s, p)

    check_against_torch(torch, "MaxPool2d", nn.MaxPool2d(k, s, p), x, forward, record_error)


@SETTINGS
@given(case=window_case(pool=True), seed=seeds)
def test_avgpool2d_with_padding_matches_torch(torch, backend, record_error, case, seed):
    x = np.random.default_rng(seed).standard_normal((case["n"], case["h"], case["w"], case["c"]))
    pool = nn.AvgPool2d(case["k"], case["s"], case["p"])

    def forward(xt):
        return torch.nn.functional.avg_pool2d(xt, case["k"], case["s"], case["p"],
                                              count_include_pad=True)

    check_against_torch(torch, "AvgPool2d", pool, x, forward, record_error, seed)


@SETTINGS
@given(n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 3),
       oh=st.integers(1, 5), ow=st.integers(1, 5), seed=seeds)
def test_adaptive_avgpool2d_matches_torch(torch, backend, record_error, n, h, w, c, oh, ow, seed):
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))

    def forward(xt):
        return torch.nn.functional.adaptive_avg_pool2d(xt, (oh, ow))

    check_against_torch(torch, "AdaptiveAvgPool2d", nn.AdaptiveAvgPool2d((oh, ow)), x, forward,
                        record_error, seed)


# ---------------------------------------------------------------- BatchNorm2d
def _bn_pair(torch, c, momentum, rng, dtype, relu=False):
    """(our BatchNorm2d, torch's, what runs ours): with relu=True ours runs as the fast
    path's fused BatchNorm2d + ReLU (minitorch_cnn.compile of BN, ReLU)."""
    ours = nn.BatchNorm2d(c, momentum=momentum, dtype=dtype)
    ours.weight.data[...] = rng.uniform(0.5, 2.0, c)
    ours.bias.data[...] = rng.standard_normal(c)
    theirs = torch.nn.BatchNorm2d(c, momentum=momentum).to(getattr(torch, np.dtype(dtype).name))
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    run = minitorch_cnn.compile(nn.Sequential(ours, nn.ReLU())) if relu else ours
    return ours, theirs, run


def _bn_step(torch, ours, theirs, x, g, run=None):
    """One forward/backward of both; returns the errors of output, dx, dgamma, dbeta.

    ``run`` (default: ours) is what runs our side; the compiled BatchNorm2d + ReLU of
    _bn_pair(relu=True) is compared with torch's BN + ReLU.

    dgamma = sum(G * x_hat) and dbeta = sum(G) over M = N*H*W random terms of
    size ~1 are ~sqrt(M) in size but can cancel to nearly 0 for one channel;
    in float32 their error is measured against sqrt(M), not against that
    accidental near-zero.
    """
    ours.zero_grad()
    theirs.zero_grad()
    run = ours if run is None else run
    y = run(x)
    dx = run.backward(g)
    xt = tensor(torch, x, requires_grad=True)
    yt = theirs(xt) if run is ours else torch.relu(theirs(xt))
    yt.backward(tensor(torch, g))
    floor = np.sqrt(x.size / x.shape[-1]) if x.dtype == np.float32 else 0.0
    return [rel(y, from_torch(yt)), rel(dx, from_torch(xt.grad)),
            rel(ours.weight.grad, theirs.weight.grad.numpy(), floor),
            rel(ours.bias.grad, theirs.bias.grad.numpy(), floor)]


@SETTINGS
@given(n=st.integers(1, 4), h=st.integers(1, 5), w=st.integers(1, 5), c=st.integers(1, 4),
       momentum=st.sampled_from([0.1, None, 0.5]), relu=st.booleans(), seed=seeds)
def test_batchnorm2d_train_steps_running_stats_and_eval_match_torch(
        torch, backend, record_error, n, h, w, c, momentum, relu, seed):
    if n * h * w < 4:
        # Training needs more than one value per channel (an error test covers that). With
        # very few, dx is nearly all cancellation (for 2 values it is exactly (G0 - G1) *
        # eps / (var + eps) in size), so relative errors only measure rounding noise.
        n = 4
    # float32: the same cancellation amplifies rounding by ~max|G| / max|dx|; keep M >= 8
    for dtype in DTYPES if n * h * w >= 8 else DTYPES[:1]:
        tol = TOL[dtype]
        rng = np.random.default_rng(seed)
        ours, theirs, run = _bn_pair(torch, c, momentum, rng, dtype, relu)
        for step in range(4):  # batches with different means and scales
            x = (rng.standard_normal((n, h, w, c)) * (step + 1) + step).astype(dtype)
            g = rng.standard_normal(x.shape).astype(dtype)
            errs = _bn_step(torch, ours, theirs, x, g, run)
            assert max(errs) <= tol, (dtype, step, errs)
        for key, value in theirs.state_dict().items():  # running stats after 4 steps
            assert rel(ours.state_dict()[key], value.numpy()) <= tol, key
        assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 4
        assert ours.num_batches_tracked.dtype == np.int64
        ours.eval()
        theirs.eval()
        x = (rng.standard_normal((n, h, w, c)) + 1.0).astype(dtype)
        eval_errs = _bn_step(torch, ours, theirs, x, rng.standard_normal(x.shape).astype(dtype),
                             run)
        assert max(eval_errs) <= tol, ("eval", dtype, eval_errs)
        assert int(ours.num_batches_tracked) == 4  # eval does not update the statistics
        if dtype is np.float64:
            record_error("BatchNorm2d", "torch64 fwd", max(errs[0], eval_errs[0]))
            record_error("BatchNorm2d", "torch64 grad", max(errs[1:] + eval_errs[1:]))
        else:
            record_error("BatchNorm2d", "torch32 all", max(errs + eval_errs))


# --------------------------------------------------------------------- loss
@SETTINGS
@given(n=st.integers(1, 6), k=st.integers(1, 7),
       smoothing=st.one_of(st.just(0.0), st.just(0.1), st.floats(0.0, 1.0)),
       reduction=st.sampled_from(["mean", "sum"]), scale=st.floats(0.1, 3.0), seed=seeds)
def test_cross_entropy_matches_torch(torch, record_error, n, k, smoothing, reduction, scale, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, k)) * 3
    targets = rng.integers(0, k, n)
    name = "CrossEntropy(ls>0)" if smoothing else "CrossEntropy"
    for dtype in DTYPES:
        loss_fn = nn.CrossEntropyLoss(label_smoothing=smoothing, reduction=reduction)
        loss = loss_fn(logits.astype(dtype), targets)
        grad = loss_fn.backward(scale)
        lt = torch.tensor(logits.astype(dtype), requires_grad=True)
        ref = torch.nn.functional.cross_entropy(lt, torch.from_numpy(targets),
                                                label_smoothing=smoothing, reduction=reduction)
        ref.backward(torch.tensor(scale, dtype=lt.dtype))
        # float32: log p of a confident prediction is a difference of nearly equal numbers, so
        # a loss near 0 has a relative error far above eps; measure the loss against the size
        # of a per-sample loss (1) and the gradient against the size of its entries (1/N).
        per_sample = 1.0 / n if reduction == "mean" else 1.0
        loss_floor, grad_floor = (n * per_sample, scale * per_sample) if dtype is np.float32 \
            else (0.0, 0.0)
        errs = [rel(loss, ref.item(), loss_floor), rel(grad, lt.grad.numpy(), grad_floor)]
        assert isinstance(loss, float) and grad.dtype == dtype
        assert max(errs) <= TOL[dtype], (dtype, errs)
        if dtype is np.float64:
            record_error(name, "torch64 fwd", errs[0])
            record_error(name, "torch64 grad", errs[1])
        else:
            record_error(name, "torch32 all", max(errs))


# --------------------------------------------------- Sequential, state_dict
def small_net(rng, dtype=np.float64):
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=1, padding=1, bias=False, rng=rng, dtype=dtype),
        nn.BatchNorm2d(4, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(4, 6, (2, 3), stride=(1, 2), padding=(1, 0), rng=rng, dtype=dtype),
        nn.AvgPool2d(2, stride=1, padding=1),
        nn.AdaptiveAvgPool2d((2, 1)),
        nn.Identity(),
        nn.Flatten(),
        nn.Linear(12, 5, rng=rng, dtype=dtype),
    )


def torch_small_net(torch):
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv2d(3, 4, 3, stride=1, padding=1, bias=False), tnn.BatchNorm2d(4), tnn.ReLU(),
        tnn.MaxPool2d(3, stride=2, padding=1),
        tnn.Conv2d(4, 6, (2, 3), stride=(1, 2), padding=(1, 0)),
        tnn.AvgPool2d(2, stride=1, padding=1), tnn.AdaptiveAvgPool2d((2, 1)), tnn.Identity(),
        tnn.Flatten(), tnn.Linear(12, 5)).double()


def test_state_dict_keys_and_shapes_equal_torch(torch):
    ours = small_net(np.random.default_rng(0)).state_dict()
    theirs = torch_small_net(torch).state_dict()
    assert list(ours) == list(theirs)  # same names, same order
    assert [v.shape for v in ours.values()] == [tuple(v.shape) for v in theirs.values()]
    assert ours["1.num_batches_tracked"].dtype == np.int64
    assert theirs["1.num_batches_tracked"].dtype == torch.int64


def test_weights_load_both_ways(torch):
    rng = np.random.default_rng(0)
    ours, theirs = small_net(rng), torch_small_net(torch)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), ours.state_dict()[k])
    fresh = torch_small_net(torch)  # torch's own init, and non-trivial buffers
    fresh.train()(torch.randn(2, 3, 8, 8, dtype=torch.float64))
    ours.load_state_dict({k: v.numpy() for k, v in fresh.state_dict().items()})
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())
    assert int(ours[1].num_batches_tracked) == 1 and ours[1].num_batches_tracked.dtype == np.int64
    # also a float32 model takes float64 tensors (cast to its dtype)
    ours32 = small_net(np.random.default_rng(0), np.float32)
    ours32.load_state_dict(fresh.state_dict())
    np.testing.assert_allclose(ours32[0].weight.data, fresh[0].weight.detach().numpy(), rtol=1e-6)
    assert ours32[0].weight.dtype == np.float32


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
def test_sequential_matches_torch_train_and_eval(torch, backend, record_error, compiled):
    rng = np.random.default_rng(5)
    ours, theirs = small_net(rng), torch_small_net(torch)
    if compiled:  # the fast path, BatchNorm2d doing the ReLU's work: same numbers
        ours = minitorch_cnn.compile(ours)
        ours(np.zeros((2, 9, 8, 3)))
        assert ours.fusion_counts()["bn_relu"] == 1
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    tparams = dict(theirs.named_parameters())
    worst_fwd = worst_grad = 0.0
    for mode in ["train", "train", "train", "eval"]:
        ours.train(mode == "train")
        theirs.train(mode == "train")
        ours.zero_grad()
        theirs.zero_grad()
        x = rng.standard_normal((3, 9, 8, 3)) + 0.5
        g = rng.standard_normal((3, 5))
        y = ours(x)
        dx = ours.backward(g)
        xt = tensor(torch, x, requires_grad=True)
        yt = theirs(xt)
        yt.backward(torch.from_numpy(g))
        grads = {"input": rel(dx, from_torch(xt.grad))}
        grads.update({k: rel(p.grad, tparams[k].grad.numpy()) for k, p in ours.named_parameters()})
        assert set(grads) == {"input"} | set(tparams)
        fwd = rel(y, yt.detach().numpy())
        assert fwd <= 1e-8 and max(grads.values()) <= 1e-8, (mode, fwd, grads)
        worst_fwd, worst_grad = max(worst_fwd, fwd), max(worst_grad, *grads.values())
    for k, v in theirs.state_dict().items():
        assert rel(ours.state_dict()[k], v.numpy()) <= 1e-12, k
    record_error("Sequential", "torch64 fwd", worst_fwd)
    record_error("Sequential", "torch64 grad", worst_grad)
