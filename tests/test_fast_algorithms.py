"""The fast path's convolution algorithms: exact against PyTorch, kernels equal to their twins.

* every algorithm, every pass (forward, dx, dw), float64, against
  ``torch.nn.functional.conv2d``: relative error <= 1e-8, hypothesis shapes
  (odd sizes, batch 1, channel counts that are not multiples of 8);
* every Numba kernel (the Winograd tile transforms) equals its NumPy twin;
* the float32 error of each algorithm against its own float64 result is at
  most twice that of im2col + GEMM on the same data, except F(4x4, 3x3)'s,
  held to issue 14's bound for it: 1e-5 of the output's scale;
* ``choose`` picks each algorithm for the shapes it was measured best on
  (every algorithm is picked for some convolution of the seed model or FastNet).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_layers_torch import from_torch, rel, tensor

from minitorch_cnn import kernels
from minitorch_cnn.fast.algorithms import ALGORITHMS, choose
from minitorch_cnn.fast.im2col import Im2colGemm
from minitorch_cnn.fast.small_map import DenseSmallMap
from minitorch_cnn.fast.winograd import Winograd2x2, Winograd4x4
from minitorch_cnn.kernels import winograd_numba, winograd_reference

SETTINGS = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
seeds = st.integers(0, 2**32 - 1)


def run(algo_cls, x, w, g, stride, padding, need_dx=True):
    stride, padding = (stride, stride), (padding, padding)
    assert algo_cls.applies(x.shape, w.shape, stride, padding)
    algo = algo_cls(x.shape, w.shape, stride, padding)
    y, saved = algo.forward(x, w)
    dx, dw = algo.backward(g, saved, w, need_dx)
    return y, dx, dw


def torch_conv(torch, x, w, g, stride, padding):
    xt, wt = tensor(torch, x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, None, stride, padding)
    yt.backward(tensor(torch, g))
    return from_torch(yt), from_torch(xt.grad), wt.grad.numpy()


def check_parity(torch, algo_cls, n, h, w_, c, k, kernel, stride, padding, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w_, c))
    w = rng.standard_normal((k, c, kernel, kernel))
    oh, ow = (h + 2 * padding - kernel) // stride + 1, (w_ + 2 * padding - kernel) // stride + 1
    g = rng.standard_normal((n, oh, ow, k))
    ours = run(algo_cls, x, w, g, stride, padding)
    ref = torch_conv(torch, x, w, g, stride, padding)
    for what, a, b in zip(("forward", "dx", "dw"), ours, ref):
        assert a.shape == b.shape, what
        assert rel(a, b) <= 1e-8, (algo_cls.name, what, rel(a, b))


# ------------------------------------------------------------- PyTorch parity
@pytest.mark.torch
@pytest.mark.parametrize("cls", [Winograd2x2, Winograd4x4], ids=lambda c: c.name)
@SETTINGS
@given(n=st.integers(1, 3), h=st.integers(1, 11), w_=st.integers(1, 11), c=st.integers(1, 11),
       k=st.integers(1, 10), padding=st.integers(0, 2), seed=seeds)
def test_winograd_matches_torch(torch, backend, cls, n, h, w_, c, k, padding, seed):
    if h + 2 * padding < 3 or w_ + 2 * padding < 3:
        assert not cls.applies((n, h, w_, c), (k, c, 3, 3), 1, padding)
        return
    check_parity(torch, cls, n, h, w_, c, k, 3, 1, padding, seed)


@pytest.mark.torch
@SETTINGS
@given(n=st.integers(1, 3), h=st.integers(1, 4), w_=st.integers(1, 4), c=st.integers(1, 11),
       k=st.integers(1, 10), kernel=st.integers(2, 3), stride=st.integers(1, 2),
       padding=st.integers(0, 1), seed=seeds)
def test_dense_small_map_matches_torch(torch, n, h, w_, c, k, kernel, stride, padding, seed):
    if h + 2 * padding < kernel or w_ + 2 * padding < kernel:
        assert not DenseSmallMap.applies((n, h, w_, c), (k, c, kernel, kernel), stride, padding)
        return
    check_parity(torch, DenseSmallMap, n, h, w_, c, k, kernel, stride, padding, seed)


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithm_on_a_stride2_padded_nonsquare_case(torch, name):
    """One fixed case each, with the algorithm's own best-fitting geometry."""
    cls = ALGORITHMS[name]
    case = {"im2col+gemm": (2, 7, 6, 5, 4, 3, 2, 1), "winograd-2x2": (2, 7, 6, 9, 5, 3, 1, 1),
            "winograd-4x4": (2, 11, 6, 9, 5, 3, 1, 1),
            "dense-small-map": (2, 4, 3, 5, 4, 3, 2, 1)}
    check_parity(torch, cls, *case[name], seed=7)


def test_no_input_gradient_when_not_needed(rng):
    x, w = rng.standard_normal((2, 4, 4, 3)), rng.standard_normal((4, 3, 3, 3))
    for cls in (Winograd2x2, Winograd4x4, DenseSmallMap):
        algo = cls(x.shape, w.shape, (1, 1), (1, 1))
        y, saved = algo.forward(x, w)
        dx, dw = algo.backward(np.ones_like(y), saved, w, need_dx=False)
        assert dx is None and dw.shape == w.shape


# ----------------------------------------------------- Numba kernels = twins
TRANSFORMS = pytest.mark.parametrize("f", [winograd_reference.F2x2, winograd_reference.F4x4],
                                     ids=["F2x2", "F4x4"])


def _tiles(h, w, padding, m):
    oh, ow = h + 2 * padding - 2, w + 2 * padding - 2
    return oh, ow, -(-oh // m), -(-ow // m)


@TRANSFORMS
@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 11), w=st.integers(1, 11), c=st.integers(1, 19),
       padding=st.integers(0, 2), dtype=st.sampled_from([np.float32, np.float64]), seed=seeds)
def test_winograd_kernels_equal_their_twins(f, n, h, w, c, padding, dtype, seed):
    if h + 2 * padding < 3 or w + 2 * padding < 3:
        return
    rng = np.random.default_rng(seed)
    oh, ow, th, tw = _tiles(h, w, padding, f.m)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    m = rng.standard_normal((f.a * f.a, n * th * tw, c)).astype(dtype)
    g = rng.standard_normal((n, oh, ow, c)).astype(dtype)
    # the same few multiply-adds (at most 6 per dimension, coefficients up to 8) in another
    # order: each result within ~8 roundings of values up to ~100, 8 * 100 * 2**-24 = 5e-5
    tol = (1e-5 if f.m == 2 else 5e-5) if dtype == np.float32 else 1e-12
    pairs = [
        (lambda mod: mod.input_transform(x, padding, padding, th, tw, f=f)),
        (lambda mod: mod.output_transform(m, n, oh, ow, th, tw, f=f)),
        (lambda mod: mod.output_transform_adjoint(g, th, tw, f=f)),
        (lambda mod: mod.input_transform_adjoint(m, x.shape, padding, padding, th, tw, f=f)),
    ]
    # F(4x4)'s kernels go through the tiles in blocks: one tile a block, three (the
    # last block short), and the default (one block here); on one thread and on two
    # (two images or more: each thread half of them)
    runs = ([(1, 1), (3, 2), (None, 1), (None, 2)] if f is winograd_reference.F4x4
            else [(None, 1)])
    default = winograd_numba.BLOCK_BYTES, winograd_numba.THREADS
    for fn in pairs:
        b = fn(winograd_reference)
        for tiles, threads in runs:
            winograd_numba.BLOCK_BYTES = (default[0] if tiles is None
                                          else tiles * 36 * c * x.itemsize)
            winograd_numba.THREADS = threads
            try:
                a = fn(winograd_numba)
            finally:
                winograd_numba.BLOCK_BYTES, winograd_numba.THREADS = default
            assert a.dtype == b.dtype == dtype and a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@TRANSFORMS
def test_winograd_kernels_fill_a_given_workspace(rng, f):
    x = rng.standard_normal((2, 5, 5, 3))
    t = -(-5 // f.m)
    for mod in (winograd_numba, winograd_reference):
        out = np.full((f.a * f.a, 2 * t * t, 3), np.nan)
        assert mod.input_transform(x, 1, 1, t, t, out=out, f=f) is out
        np.testing.assert_allclose(out, winograd_reference.input_transform(x, 1, 1, t, t, f=f))
        dm = np.full((f.a * f.a, 2 * t * t, 3), np.nan)
        assert mod.output_transform_adjoint(x, t, t, out=dm, f=f) is dm
        np.testing.assert_allclose(dm, winograd_reference.output_transform_adjoint(x, t, t, f=f))


def test_winograd_numba_refuses_a_transform_it_has_no_kernels_for(rng):
    f3 = winograd_reference.Transform(np.eye(5), np.ones((5, 3)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="F2x2 and F4x4 only"):
        winograd_numba.input_transform(rng.standard_normal((1, 5, 5, 2)), 1, 1, 2, 2, f=f3)


@TRANSFORMS
def test_filter_transform_and_its_adjoint(rng, f):
    """U = G w G^T per (k, c) and <U, dU> = <w, G^T dU G> (adjointness)."""
    w = rng.standard_normal((5, 3, 3, 3))
    ut = kernels.winograd_filter(w, f)                                  # (a*a, K, C)
    u00 = (f.G @ w[2, 1] @ f.G.T).reshape(f.a * f.a)
    np.testing.assert_allclose(ut[:, 2, 1], u00, rtol=1e-14)
    dut = rng.standard_normal(ut.shape)
    np.testing.assert_allclose(np.vdot(ut, dut), np.vdot(w, kernels.winograd_filter_adjoint(dut, f)),
                               rtol=1e-12)


def test_f4x4_is_the_toom_cook_transform_of_its_points():
    """A^T [(G w) * (B^T d)] is the 1-D correlation of a 6-sample d with a 3-tap w."""
    rng = np.random.default_rng(3)
    f = winograd_reference.F4x4
    d, w = rng.standard_normal(6), rng.standard_normal(3)
    np.testing.assert_allclose(f.AT @ ((f.G @ w) * (f.BT @ d)),
                               [d[i:i + 3] @ w for i in range(4)], rtol=1e-13, atol=1e-13)


# ------------------------------------------------------------ float32 error
F32_CASES = [  # (name, n, h, c, k, kernel, stride, padding): sizes of the real layers, scaled down
    ("winograd-2x2", 4, 15, 64, 64, 3, 1, 1),
    ("winograd-2x2", 8, 4, 128, 128, 3, 1, 1),
    ("winograd-4x4", 4, 15, 64, 256, 3, 1, 1),
    ("winograd-4x4", 4, 7, 256, 256, 3, 1, 1),
    ("winograd-4x4", 2, 31, 24, 64, 3, 1, 1),
    ("dense-small-map", 8, 2, 256, 64, 3, 1, 1),
]
# Bounds on a ratio of two float32 errors measured in the same run, on the same CPU and
# BLAS (no absolute constant fitted to one machine). 2x: each fast algorithm rounds at most
# about as often per output as im2col's dot product of length kh*kw*C, and its transforms
# (Winograd) or zero blocks (dense) change only constant factors, for which 2x leaves room.
# The dense form's dx is one dot product over all 4 K taps where im2col's is 4 dot products
# over K, summed by col2im: the worst-case rounding bound of a dot product grows with its
# length (|error| <= n eps sum|terms|), so 4x (measured 1.3-2.9x over 5 seeds, one or two
# BLAS threads).
F32_BOUND = {("dense-small-map", "dx"): 4.0}
# F(4x4, 3x3)'s transforms multiply by up to 8 (A^T) and 5/2 (B^T): measured 1.7-8.8x
# im2col's error, 1.0-4.1e-6 of the output's scale on these shapes and FastNet's. Issue 14
# allowed it "if its error stays within 1e-5 of the output scale": that is its bound, and
# the measured ratio's double is a second one, so that a change that rounds worse still fails.
F32_OF_SCALE = {"winograd-4x4": (1e-5, 16.0)}


@pytest.mark.parametrize("case", F32_CASES, ids=lambda c: f"{c[0]}-{c[2]}x{c[2]}x{c[3]}")
def test_float32_error_at_most_twice_im2col(case):
    """max |float32 - float64| / max |float64| per pass, against im2col + GEMM's on the
    same data, averaged over 4 draws (one draw's ratio varies by about +-30 %); F(4x4)
    against its own bounds (``F32_OF_SCALE``)."""
    name, n, h, c, k, kernel, stride, padding = case
    oh = (h + 2 * padding - kernel) // stride + 1
    errors = {"im2col": 0, name: 0}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, h, h, c))
        w = rng.standard_normal((k, c, kernel, kernel)) / np.sqrt(c * kernel * kernel)
        g = rng.standard_normal((n, oh, oh, k))
        f32 = [a.astype(np.float32) for a in (x, w, g)]
        exact = run(Im2colGemm, x, w, g, stride, padding)
        for label, cls in (("im2col", Im2colGemm), (name, ALGORITHMS[name])):
            got = run(cls, *f32, stride, padding)
            errors[label] += np.array([rel(a, b) for a, b in zip(got, exact)]) / 4
    for ours, base, what in zip(errors[name], errors["im2col"], ("forward", "dx", "dw")):
        if name in F32_OF_SCALE:
            of_scale, ratio = F32_OF_SCALE[name]
            assert ours <= of_scale and ours <= ratio * base, (name, what, ours, base)
        else:
            assert ours <= F32_BOUND.get((name, what), 2.0) * base, (name, what, ours, base)


# ---------------------------------------------------------------- the choice
SEED_AND_FASTNET = [  # (x_shape, weight_shape, stride, padding) -> the measured choice
    ((100, 32, 32, 3), (64, 3, 7, 7), 2, 3, "im2col+gemm"),
    ((100, 7, 7, 64), (64, 64, 3, 3), 1, 1, "im2col+gemm"),          # C = 64, odd output
    ((100, 4, 4, 64), (64, 64, 3, 3), 1, 1, "winograd-2x2"),         # C = 64, even output
    ((512, 31, 31, 24), (64, 24, 3, 3), 1, 1, "im2col+gemm"),        # C = 24 < 64, 4,096 tiles
    ((128, 32, 32, 16), (16, 16, 3, 3), 1, 1, "im2col+gemm"),        # C = 16
    ((512, 32, 32, 8), (16, 8, 3, 3), 1, 1, "im2col+gemm"),          # C = 8
    ((100, 4, 4, 128), (128, 128, 3, 3), 1, 1, "winograd-2x2"),
    ((100, 2, 2, 256), (256, 256, 3, 3), 1, 1, "dense-small-map"),
    ((512, 32, 32, 3), (24, 3, 2, 2), 1, 0, "im2col+gemm"),
    ((512, 3, 3, 256), (256, 256, 3, 3), 1, 1, "winograd-4x4"),     # 512 tiles
    ((200, 3, 3, 256), (256, 256, 3, 3), 1, 1, "dense-small-map"),  # 200 tiles, 9 pixels
    ((512, 7, 7, 256), (256, 256, 3, 3), 1, 1, "winograd-4x4"),      # 2,048 4x4 tiles
    ((100, 7, 7, 256), (256, 256, 3, 3), 1, 1, "winograd-2x2"),      # 400: C >= 128, odd
    ((100, 4, 4, 64), (64, 64, 3, 3), 2, 1, "im2col+gemm"),
    ((512, 7, 7, 256), (256, 256, 5, 5), 1, 2, "im2col+gemm (recomputed in backward)"),
    ((512, 15, 15, 64), (256, 64, 3, 3), 1, 1, "winograd-4x4"),      # C = 64, 8,192 tiles
    ((512, 15, 15, 64), (64, 64, 3, 3), 1, 1, "winograd-4x4"),
    ((30, 15, 15, 64), (256, 64, 3, 3), 1, 1, "winograd-2x2"),       # 480: C = 64, odd, K = 256
    ((30, 15, 15, 64), (64, 64, 3, 3), 1, 1, "im2col+gemm"),         # C = 64, odd, K = 64
    ((2000, 3, 3, 256), (256, 256, 3, 3), 1, 1, "winograd-4x4"),     # one tile an image
    ((2000, 31, 31, 24), (64, 24, 3, 3), 1, 1, "im2col+gemm"),       # C = 24
    ((512, 15, 15, 64), (256, 64, 3, 3), 2, 1, "im2col+gemm (recomputed in backward)"),
    ((100, 7, 7, 256), (64, 256, 1, 1), 1, 0, "gemm (1x1: no im2col copy)"),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, expected", SEED_AND_FASTNET)
def test_choose_follows_the_measurements(x_shape, w_shape, stride, padding, expected):
    algo = choose(x_shape, w_shape, stride, padding)
    assert algo.name == expected
    assert algo.applies(x_shape, w_shape, (stride, stride), (padding, padding))


def test_every_algorithm_is_chosen_somewhere():
    chosen = {type(choose(*case[:4])) for case in SEED_AND_FASTNET}
    assert chosen == set(ALGORITHMS.values())


@pytest.mark.parametrize("cls", [Winograd2x2, Winograd4x4], ids=lambda c: c.name)
def test_winograd_chunks_add_up_and_reuse_their_workspace(rng, monkeypatch, cls):
    """A batch in chunks of two images (and a smaller last chunk) gives the one-pass result
    (F(4x4) keeps each chunk's V for backward; F(2x2) recomputes it)."""
    x, w = rng.standard_normal((3, 5, 6, 4)), rng.standard_normal((2, 4, 3, 3))
    g = rng.standard_normal((3, 5, 6, 2))
    whole = run(cls, x, w, g, 1, 1)
    f = cls.TRANSFORM
    tiles = -(-5 // f.m) * -(-6 // f.m)
    monkeypatch.setattr(cls, "CHUNK_BYTES", 2 * f.a * f.a * tiles * (4 + 2) * 8)  # 2 images
    algo = cls(x.shape, w.shape, (1, 1), (1, 1))
    assert algo._plan(x.shape, 2, 8)[-1] == 2
    for _ in range(2):
        y, saved = algo.forward(x, w)
        dx, dw = algo.backward(g, saved, w, True)
        for a, b in zip((y, dx, dw), whole):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert algo.workspace is Winograd2x2((1, 4, 4, 1), (1, 1, 3, 3), (1, 1), (1, 1)).workspace
    assert algo.workspace is Winograd4x4((1, 4, 4, 1), (1, 1, 3, 3), (1, 1), (1, 1)).workspace


def test_a_later_forward_invalidates_an_earlier_backward(rng):
    x, w = rng.standard_normal((1, 4, 4, 2)), rng.standard_normal((3, 2, 3, 3))
    for cls in (DenseSmallMap,):
        algo = cls(x.shape, w.shape, (1, 1), (1, 1))
        y, first = algo.forward(x, w)
        algo.forward(x, w)
        with pytest.raises(RuntimeError, match="earlier forward"):
            algo.backward(y, first, w, True)


@pytest.mark.parametrize("cls, x_shape, w_shape, stride, padding", [
    (Winograd2x2, (1, 8, 8, 4), (4, 4, 3, 3), 2, 1),
    (Winograd2x2, (1, 8, 8, 4), (4, 4, 5, 5), 1, 2),
    (Winograd4x4, (1, 8, 8, 4), (4, 4, 3, 3), 2, 1),
    (Winograd4x4, (1, 1, 1, 4), (4, 4, 3, 3), 1, 0),
    (DenseSmallMap, (1, 5, 5, 4), (4, 4, 3, 3), 1, 1),
    (DenseSmallMap, (1, 2, 2, 4), (4, 4, 1, 1), 1, 0),
])
def test_applies_refuses_shapes_it_cannot_run(cls, x_shape, w_shape, stride, padding):
    assert not cls.applies(x_shape, w_shape, (stride, stride), (padding, padding))
