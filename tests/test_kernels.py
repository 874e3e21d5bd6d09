"""The performance core: every Numba kernel equals its NumPy twin, im2col/col2im are
adjoint, the 1x1 shortcuts equal the general path, and the backend switch works."""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_cnn
from minitorch_cnn import _memory, kernels, nn
from minitorch_cnn.kernels import numba_kernels as nb
from minitorch_cnn.kernels import reference as ref

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = settings(max_examples=60, deadline=None)


def rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


@st.composite
def windows(draw, pool=False):
    """(x shape, kh, kw, sh, sw, ph, pw) with at least one window; pooling keeps 2p <= k."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph = draw(st.integers(0, kh // 2 if pool else kh))
    pw = draw(st.integers(0, kw // 2 if pool else kw))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    return (n, h, w, c), kh, kw, sh, sw, ph, pw


# ------------------------------------------------------------- im2col / col2im
@SETTINGS
@given(windows(), st.integers(0, 2**31 - 1))
def test_im2col_numba_equals_reference(win, seed):
    shape, *k = win
    x = rand(np.random.default_rng(seed), shape)
    expected = ref.im2col(x, *k)
    got = nb.im2col(x, *k)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


@SETTINGS
@given(windows(), st.integers(0, 2**31 - 1))
def test_col2im_numba_equals_reference(win, seed):
    shape, *k = win
    rows = ref.im2col(np.zeros(shape, np.float32), *k).shape
    cols = rand(np.random.default_rng(seed), rows)
    got = nb.col2im(cols, shape, *k)
    assert got.shape == shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref.col2im(cols, shape, *k), rtol=1e-6, atol=1e-6)


@SETTINGS
@given(windows(), st.integers(0, 2**31 - 1), st.sampled_from(["numpy", "numba"]))
def test_im2col_col2im_are_adjoint(win, seed, backend):
    """<im2col(x), c> = <x, col2im(c)> for every x and c: col2im is im2col's transpose."""
    shape, *k = win
    rng = np.random.default_rng(seed)
    x = rand(rng, shape, np.float64)
    with kernels.use_backend(backend):
        cols = kernels.im2col(x, *k)
        c = rand(rng, cols.shape, np.float64)
        lhs = np.vdot(cols, c)
        rhs = np.vdot(x, kernels.col2im(c, shape, *k))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 8), st.integers(1, 8), st.integers(1, 5),
       st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_1x1_shortcuts_equal_the_general_kernels(n, h, w, c, sh, sw, seed):
    """The dispatcher's 1x1 paths (a view / strided subsample, a reshape / scatter)."""
    rng = np.random.default_rng(seed)
    x = rand(rng, (n, h, w, c))
    k = (1, 1, sh, sw, 0, 0)
    cols = kernels.im2col(x, *k)
    np.testing.assert_array_equal(cols, ref.im2col(x, *k))
    if sh == sw == 1:
        assert np.shares_memory(cols, x)            # no copy at all
    g = rand(rng, cols.shape)
    np.testing.assert_array_equal(kernels.col2im(g, x.shape, *k), ref.col2im(g, x.shape, *k))


def test_im2col_known_values():
    """A 3x3 window with padding 1 on a 2x2 single-channel image, written out by hand."""
    x = np.arange(1, 5, dtype=np.float32).reshape(1, 2, 2, 1)   # [[1, 2], [3, 4]]
    for backend in ("numpy", "numba"):
        with kernels.use_backend(backend):
            cols = kernels.im2col(x, 3, 3, 1, 1, 1, 1)
        np.testing.assert_array_equal(cols[0], [0, 0, 0, 0, 1, 2, 0, 3, 4])
        np.testing.assert_array_equal(cols[3], [1, 2, 0, 3, 4, 0, 0, 0, 0])


# ---------------------------------------------------------------------- pooling
@SETTINGS
@given(windows(pool=True), st.integers(0, 2**31 - 1))
def test_maxpool_numba_equals_reference(win, seed):
    shape, *k = win
    rng = np.random.default_rng(seed)
    # few distinct values, so ties (first maximum wins) are exercised
    x = rng.integers(-3, 3, shape).astype(np.float32)
    out, arg = nb.maxpool_forward(x, *k)
    out_r, arg_r = ref.maxpool_forward(x, *k)
    np.testing.assert_array_equal(out, out_r)
    np.testing.assert_array_equal(arg, arg_r)
    assert out.dtype == np.float32 and arg.dtype == arg_r.dtype
    g = rand(rng, out.shape)
    np.testing.assert_allclose(nb.maxpool_backward(g, arg, shape),
                               ref.maxpool_backward(g, arg_r, shape), rtol=1e-6, atol=1e-6)


def test_maxpool_overlapping_windows_accumulate():
    """Stride 1, kernel 2: the single maximum wins all four windows and gets the sum."""
    x = np.zeros((1, 3, 3, 1), np.float32)
    x[0, 1, 1, 0] = 5.0
    for impl in (ref, nb):
        out, arg = impl.maxpool_forward(x, 2, 2, 1, 1, 0, 0)
        assert (out == 5).all() and (arg == 4).all()
        dx = impl.maxpool_backward(np.full(out.shape, 1.5, np.float32), arg, x.shape)
        assert dx[0, 1, 1, 0] == 6.0 and dx.sum() == 6.0


def test_maxpool_nan_propagates_like_the_reference():
    x = np.array([1.0, np.nan, 3.0, 2.0], np.float32).reshape(1, 2, 2, 1)
    out_r, arg_r = ref.maxpool_forward(x, 2, 2, 2, 2, 0, 0)
    out, arg = nb.maxpool_forward(x, 2, 2, 2, 2, 0, 0)
    assert np.isnan(out).all() and np.isnan(out_r).all()
    np.testing.assert_array_equal(arg, arg_r)


@SETTINGS
@given(windows(pool=True), st.integers(0, 2**31 - 1))
def test_avgpool_numba_equals_reference(win, seed):
    shape, *k = win
    rng = np.random.default_rng(seed)
    x = rand(rng, shape)
    out = nb.avgpool_forward(x, *k)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref.avgpool_forward(x, *k), rtol=1e-5, atol=1e-6)
    g = rand(rng, out.shape)
    dx = nb.avgpool_backward(g, shape, *k)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, ref.avgpool_backward(g, shape, *k), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------- BatchNorm (+ ReLU)
@st.composite
def bn_case(draw):
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 5)),
             draw(st.integers(1, 7)))
    return shape, draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 2**31 - 1))


@SETTINGS
@given(bn_case())
def test_batchnorm_kernels_numba_equal_reference(case):
    shape, relu, training, seed = case
    rng = np.random.default_rng(seed)
    c = shape[-1]
    x = rand(rng, shape) * 3 + 5                    # an offset mean, as after a conv + bias
    mean, var = nb.channel_stats(x)
    mean_r, var_r = ref.channel_stats(x)
    assert mean.dtype == var.dtype == np.float32
    np.testing.assert_allclose(mean, mean_r, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(var, var_r, rtol=1e-5, atol=1e-5)

    inv_std = (1 / np.sqrt(var_r + 1e-5)).astype(np.float32)
    scale = rand(rng, c) * inv_std
    shift = rand(rng, c)
    y = nb.scale_shift(x, scale, shift, relu)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, ref.scale_shift(x, scale, shift, relu))

    g = rand(rng, shape)
    got = nb.batchnorm_backward(g, x, mean_r, inv_std, scale, shift, relu, training)
    expected = ref.batchnorm_backward(g, x, mean_r, inv_std, scale, shift, relu, training)
    for a, b in zip(got, expected):
        assert a.dtype == np.float32 and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4 * np.abs(b).max() + 1e-5)


def test_channel_stats_large_offset_is_accurate():
    """One pass, shifted, float64 sums: no cancellation when |mean| >> std."""
    rng = np.random.default_rng(0)
    x = (1000 + 0.01 * rng.standard_normal((4000, 3))).astype(np.float32)
    exact_mean = x.astype(np.float64).mean(0)
    exact_var = x.astype(np.float64).var(0)
    for impl in (ref, nb):
        mean, var = impl.channel_stats(x)
        np.testing.assert_allclose(mean, exact_mean, rtol=1e-7)
        np.testing.assert_allclose(var, exact_var, rtol=1e-4)


@pytest.mark.parametrize("impl", [ref, nb], ids=["numpy", "numba"])
def test_relu_backward(impl):
    y = np.array([[0.0, 1.0], [2.0, 0.0]], np.float32)
    g = np.array([[5.0, 6.0], [7.0, 8.0]], np.float32)
    np.testing.assert_array_equal(impl.relu_backward(g, y), [[0, 6], [7, 0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wd, damp, nesterov", [(0.0, 0.0, False), (5e-4, 0.0, True),
                                                (1e-2, 0.3, False), (0.0, 0.0, True)])
def test_sgd_momentum_update_numba_equals_reference(dtype, wd, damp, nesterov):
    rng = np.random.default_rng(7)
    p, g, buf = (rand(rng, (3, 5, 7), dtype) for _ in range(3))
    p0, buf0 = p.astype(np.float64), buf.astype(np.float64)
    expect_p, expect_buf = p.copy(), buf.copy()
    ref.sgd_momentum_update(expect_p, g, expect_buf, 0.05, 0.9, damp, wd, nesterov)
    g_before = g.copy()
    nb.sgd_momentum_update(p, g, buf, 0.05, 0.9, damp, wd, nesterov)
    np.testing.assert_array_equal(buf, expect_buf)   # same operations, same order: bit for bit
    np.testing.assert_array_equal(p, expect_p)
    np.testing.assert_array_equal(g, g_before)
    assert p.dtype == buf.dtype == dtype
    # and the equations themselves, by hand in float64
    d = g_before.astype(np.float64) + wd * p0
    b = 0.9 * buf0 + (1 - damp) * d
    p1 = p0 - 0.05 * (d + 0.9 * b if nesterov else b)
    # float32: at most 5 roundings (each <= 2**-25 relative) of values up to ~4 apart from
    # the float64 equations: 5 * 4 * 2**-25 = 6e-7 <= 1e-6 (derived, no BLAS involved)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(buf, b, rtol=tol, atol=tol)
    np.testing.assert_allclose(p, p1, rtol=tol, atol=tol)


# ------------------------------------------------------- layers, both backends
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_agree_across_backends_and_keep_dtype(dtype):
    """Conv (k x k, 1x1 strided), BN, ReLU, pools, plain and compiled: numba == numpy, no dtype
    promotion."""
    rng = np.random.default_rng(5)
    x = rand(rng, (3, 9, 9, 4), dtype)

    def build():
        nn.manual_seed(0)
        return nn.Sequential(nn.Conv2d(4, 6, 3, 2, 1), nn.BatchNorm2d(6), nn.ReLU(),
                             nn.MaxPool2d(3, 1, 1), nn.Conv2d(6, 8, 1, 2), nn.BatchNorm2d(8),
                             nn.ReLU(), nn.AvgPool2d(2, 1)).to(dtype)

    def run_all(dtype, g):
        out = {}
        for backend in ("numpy", "numba"):
            for compiled in (False, True):
                with kernels.use_backend(backend):
                    model = build().to(dtype)
                    run = minitorch_cnn.compile(model) if compiled else model
                    y = run(x.astype(dtype))
                    g = rand(np.random.default_rng(6), y.shape, dtype) if g is None else g
                    dx = run.backward(g.astype(dtype))
                    assert y.dtype == dx.dtype == dtype
                    assert all(p.grad.dtype == dtype for p in model.parameters())
                    out[backend, compiled] = [y, dx] + [p.grad for p in model.parameters()]
        return out, g

    out, g = run_all(dtype, None)
    if dtype == np.float64:
        reference = out["numpy", False]
        for key, results in out.items():
            for a, b in zip(reference, results):
                np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10 * max(1.0, np.abs(a).max()),
                                           err_msg=str(key))
        return
    # float32, no fitted tolerance: each way's output (continuous in x; the gradients jump
    # where rounding flips a ReLU or max-pool choice, so they are compared in float64 only)
    # is as far from the float64 result (same float32 inputs) as at most 4x the plain NumPy
    # float32 path's own error (4: a fast convolution may round up to 4x what im2col + GEMM
    # does, tests/test_fast_algorithms.py::F32_BOUND), or 64 float32 roundings
    # (64 * 2**-24 = 3.8e-6) of its size, whichever is larger.
    exact = run_all(np.float64, g)[0]["numpy", False][0]

    def err(a, b):
        return np.linalg.norm(np.ravel(a) - np.ravel(b)) / max(np.linalg.norm(np.ravel(b)), 1e-300)

    own = err(out["numpy", False][0], exact)
    for key, results in out.items():
        assert err(results[0], exact) <= max(4 * own, 64 * 2.0**-24), (key, err(results[0], exact))


# ------------------------------------------------------------ the switch
def test_set_backend_and_use_backend():
    start = kernels.get_backend()
    try:
        assert kernels.set_backend("numpy") == start
        assert kernels.get_backend() == "numpy"
        with kernels.use_backend("numba"):
            assert kernels.get_backend() == "numba"
        assert kernels.get_backend() == "numpy"
        with pytest.raises(ValueError, match="unknown kernel backend"):
            kernels.set_backend("cuda")
    finally:
        kernels.set_backend(start)


def _python(code, unset=(), **env):
    """Run code in a fresh interpreter: os.environ without ``unset``, plus ``env``."""
    full = {k: v for k, v in os.environ.items() if k not in unset}
    full.update(PYTHONPATH=ROOT, **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def _run(code, unset=(), **env):
    done = _python(code, unset, **env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_environment_variable_selects_the_backend():
    code = "import minitorch_cnn; print(minitorch_cnn.kernels.get_backend())"
    assert _run(code, MINITORCH_KERNELS="numpy") == "numpy"
    assert _run(code, MINITORCH_KERNELS="numba") == "numba"


def test_numba_disable_jit_runs_the_kernels_as_python():
    code = """
        import numpy as np
        from minitorch_cnn.kernels import numba_kernels as nb, reference as ref
        assert not hasattr(nb._im2col, "py_func")          # really plain Python
        x = np.random.default_rng(0).standard_normal((2, 5, 4, 3)).astype(np.float32)
        assert np.array_equal(nb.im2col(x, 3, 2, 2, 1, 1, 1), ref.im2col(x, 3, 2, 2, 1, 1, 1))
        out, arg = nb.maxpool_forward(x, 3, 3, 2, 2, 1, 1)
        assert np.array_equal(arg, ref.maxpool_forward(x, 3, 3, 2, 2, 1, 1)[1])
        m, v = nb.channel_stats(x)
        assert np.allclose(v, ref.channel_stats(x)[1], rtol=1e-5)
        print("ok")
    """
    assert _run(code, NUMBA_DISABLE_JIT="1") == "ok"


def test_threading_policy_is_set_before_numba_and_respects_the_user():
    code = """
        import os, sys
        import minitorch_cnn
        from minitorch_cnn import _threading
        print(os.environ["OMP_WAIT_POLICY"], os.environ["NUMBA_THREADING_LAYER"],
              os.environ["OPENBLAS_THREAD_TIMEOUT"], "numba" in sys.modules)
    """
    policy = ("OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER", "OPENBLAS_THREAD_TIMEOUT")
    out = _run(code, unset=policy)
    assert out.split()[:3] == ["PASSIVE", "workqueue", "4"]
    assert _run(code, OMP_WAIT_POLICY="ACTIVE").split()[0] == "ACTIVE"
    assert _run(code, OPENBLAS_THREAD_TIMEOUT="28").split()[2] == "28"


@pytest.mark.skipif(not _memory.glibc(), reason="the malloc policy applies to Linux with glibc only")
def test_malloc_policy_keeps_a_freed_large_array_in_the_heap_unless_told_not_to():
    """After import, a freed 64 MB array stays in the heap as free space (ready for
    the next step's array) instead of being unmapped, and so do 2.4 GB freed at
    once (more than any trim threshold mallopt's int could set: a batch of 2,000
    frees that much a step); 'system' and a user's own malloc variable leave
    glibc's behaviour alone. np.empty touches no page, so this costs no time."""
    code = """
        import ctypes, numpy as np, minitorch_cnn
        class Info(ctypes.Structure):
            _fields_ = [(f, ctypes.c_size_t) for f in
                        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks "
                        "fordblks keepcost".split()]
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = Info
        a = np.ones(16_000_000, np.float32)
        del a
        kept_small = libc.mallinfo2().fordblks >= 64_000_000
        a, b = np.empty(300_000_000, np.float32), np.empty(300_000_000, np.float32)
        del a, b
        print(minitorch_cnn._memory.describe(), kept_small, libc.mallinfo2().fordblks >= 2.4e9)
    """
    unset = ("MINITORCH_MALLOC",) + _memory.USER_VARS
    assert _run(code, unset).split() == ["reuse", "True", "True"]
    assert _run(code, unset, MINITORCH_MALLOC="system").split() == ["system", "False", "False"]
    assert _run(code, unset, MALLOC_MMAP_THRESHOLD_="1048576").split() == ["system", "False", "False"]
    bad = _python("import minitorch_cnn", unset, MINITORCH_MALLOC="huge")
    assert "MINITORCH_MALLOC='huge': expected one of reuse, system" in bad.stderr


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="NUMBA_DISABLE_JIT=1: nothing is compiled")
def test_kernels_are_cached_on_disk():
    """cache=True: a second process loads machine code instead of compiling."""
    for name in nb.__all__:
        dispatcher = getattr(nb, "_" + name)
        assert dispatcher._cache.__class__.__name__ == "FunctionCache", name
