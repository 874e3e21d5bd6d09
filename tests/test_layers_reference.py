"""Fixed reference values, worked out by hand or by plain loops: these catch errors without PyTorch.

Each expected array below is derived in the comment next to it (or by the
naive NCHW loops at the top of the file, written independently of the
layers' im2col/NHWC code).
"""
import numpy as np
import pytest

from minitorch_cnn import nn


def nhwc(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


# ----------------------------------------------------------- naive loops
def naive_conv_nchw(x, w, b, stride, pad):
    """y[n,o,i,j] = b[o] + sum_{c,p,q} x_pad[n, c, i*sh+p, j*sw+q] * w[o,c,p,q], by loops."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, pad
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    y = np.zeros((n, o, oh, ow))
    for a in range(n):
        for f in range(o):
            for i in range(oh):
                for j in range(ow):
                    y[a, f, i, j] = b[f] + np.sum(
                        xp[a, :, i * sh:i * sh + kh, j * sw:j * sw + kw] * w[f])
    return y


def naive_conv_backward_nchw(x, w, g, stride, pad):
    """dx, dw, db of sum(y * g) for the convolution above, by the same loops."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, pad
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for a in range(n):
        for f in range(o):
            for i in range(g.shape[2]):
                for j in range(g.shape[3]):
                    window = (a, slice(None), slice(i * sh, i * sh + kh),
                              slice(j * sw, j * sw + kw))
                    dxp[window] += g[a, f, i, j] * w[f]
                    dw[f] += g[a, f, i, j] * xp[window]
    return dxp[:, :, ph:ph + h, pw:pw + wd], dw, g.sum(axis=(0, 2, 3))


def set_conv(conv, w, b=None):
    conv.weight.data[...] = w
    if b is not None:
        conv.bias.data[...] = b
    return conv


# ------------------------------------------------------------------ Conv2d
def test_conv2d_by_hand_diagonal_difference(backend):
    # w = [[1, 0], [0, -1]]: y[i,j] = x[i,j] - x[i+1,j+1] = -4 on arange(9) rows of 3, plus 0.5
    x = np.arange(9, dtype=np.float64).reshape(1, 3, 3, 1)
    conv = set_conv(nn.Conv2d(1, 1, 2, dtype=np.float64), [[[[1, 0], [0, -1]]]], [0.5])
    np.testing.assert_array_equal(conv(x)[0, :, :, 0], [[-3.5, -3.5], [-3.5, -3.5]])


def test_conv2d_by_hand_box_filter_stride2_pad1(backend):
    # 3x3 ones, stride 2, padding 1 on x = arange(16) as 4x4: output 2x2 whose windows cover
    # rows {0,1} / {1,2,3} and the same columns:
    #   [0:2,0:2] -> 0+1+4+5 = 10         [0:2,1:4] -> 1+2+3+5+6+7 = 24
    #   [1:4,0:2] -> 4+5+8+9+12+13 = 51   [1:4,1:4] -> 5+6+7+9+10+11+13+14+15 = 90
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    conv = set_conv(nn.Conv2d(1, 1, 3, stride=2, padding=1, bias=False, dtype=np.float64),
                    np.ones((1, 1, 3, 3)))
    np.testing.assert_array_equal(conv(x)[0, :, :, 0], [[10, 24], [51, 90]])
    # with upstream ones, dx counts the windows covering each pixel: rows/cols (1, 2, 1, 1)
    dx = conv.backward(np.ones((1, 2, 2, 1)))
    np.testing.assert_array_equal(dx[0, :, :, 0], np.outer([1, 2, 1, 1], [1, 2, 1, 1]))
    # dw[p, q] sums the pixel at offset (p, q) of each window; e.g. the centre tap sees
    # x[0,0] + x[0,2] + x[2,0] + x[2,2] = 0 + 2 + 8 + 10
    assert conv.weight.grad[0, 0, 1, 1] == 20
    assert conv.weight.grad[0, 0, 0, 0] == 5  # only the last window's corner is inside: x[1,1]


@pytest.mark.parametrize("stride, pad, k", [((2, 1), (1, 1), (3, 2)), ((1, 1), (0, 0), (1, 1)),
                                            ((2, 2), (0, 0), (1, 1))])
def test_conv2d_linspace_against_plain_loops(backend, stride, pad, k):
    n, c, h, w, o = 2, 3, 5, 6, 4
    x = np.linspace(-0.1, 0.5, n * c * h * w).reshape(n, c, h, w)          # NCHW
    wt = np.linspace(-0.2, 0.3, o * c * k[0] * k[1]).reshape(o, c, *k)
    b = np.linspace(-0.1, 0.2, o)
    conv = set_conv(nn.Conv2d(c, o, k, stride, pad, dtype=np.float64), wt, b)
    y = conv(nhwc(x))
    expected = naive_conv_nchw(x, wt, b, stride, pad)
    np.testing.assert_allclose(nchw(y), expected, rtol=1e-12, atol=1e-14)
    g = np.linspace(-1.0, 1.0, expected.size).reshape(expected.shape)
    dx = conv.backward(nhwc(g))
    dx_ref, dw_ref, db_ref = naive_conv_backward_nchw(x, wt, g, stride, pad)
    np.testing.assert_allclose(nchw(dx), dx_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(conv.weight.grad, dw_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(conv.bias.grad, db_ref, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------- pooling
X4 = np.array([[1, 3, 2, 1],
               [4, 2, 0, 5],
               [3, 1, 7, 6],
               [0, 8, 2, 2]], dtype=np.float64)


def test_maxpool_2x2_by_hand(backend):
    pool = nn.MaxPool2d(2)
    y = pool(X4.reshape(1, 4, 4, 1))
    np.testing.assert_array_equal(y[0, :, :, 0], [[4, 5], [8, 7]])
    dx = pool.backward(np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 0, 0, 0],
                                                   [1, 0, 0, 2],
                                                   [0, 0, 4, 0],
                                                   [0, 3, 0, 0]])


def test_maxpool_overlapping_3x3_stride2_pad1_by_hand(backend):
    # windows cover rows {0,1} and {1,2,3} (same for columns):
    #   (0,0): {1,3,4,2} -> 4 at (1,0)        (0,1): {3,2,1,2,0,5} -> 5 at (1,3)
    #   (1,0): {4,2,3,1,0,8} -> 8 at (3,1)    (1,1): {2,0,5,1,7,6,8,2,2} -> 8 at (3,1) again
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    y = pool(X4.reshape(1, 4, 4, 1))
    np.testing.assert_array_equal(y[0, :, :, 0], [[4, 5], [8, 8]])
    dx = pool.backward(np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 0, 0, 0],
                                                   [1, 0, 0, 2],
                                                   [0, 0, 0, 0],
                                                   [0, 7, 0, 0]])  # 3 + 4: won two windows


def test_maxpool_ties_go_to_the_first_in_reading_order(backend):
    x = np.array([[5.0, 5.0], [5.0, 1.0]]).reshape(1, 2, 2, 1)
    pool = nn.MaxPool2d(2)
    pool(x)
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1)))[0, :, :, 0],
                                  [[1, 0], [0, 0]])


def test_maxpool_padding_never_wins_over_negative_values(backend):
    x = -np.arange(1, 5, dtype=np.float64).reshape(1, 2, 2, 1)  # all negative
    y = nn.MaxPool2d(2, stride=1, padding=1)(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1, -1, -2], [-1, -1, -2], [-3, -3, -4]])


def test_maxpool_channels_are_independent(backend):
    x = np.stack([X4, -X4], axis=-1)[None]  # (1, 4, 4, 2)
    y = nn.MaxPool2d(2)(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[4, 5], [8, 7]])
    np.testing.assert_array_equal(y[0, :, :, 1], [[-1, 0], [0, -2]])


def test_avgpool_3x3_stride2_pad1_counts_padding(backend):
    # the same windows as the box-filter convolution: sums 10, 24, 51, 90, each divided by 9
    pool = nn.AvgPool2d(3, stride=2, padding=1)
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    np.testing.assert_allclose(pool(x)[0, :, :, 0], np.array([[10, 24], [51, 90]]) / 9,
                               rtol=1e-15)
    dx = pool.backward(np.ones((1, 2, 2, 1)))
    np.testing.assert_allclose(dx[0, :, :, 0], np.outer([1, 2, 1, 1], [1, 2, 1, 1]) / 9,
                               rtol=1e-15)


def test_adaptive_avgpool_uneven_bins_by_hand(backend):
    # 5 rows into 3 bins: [floor(5i/3), ceil(5(i+1)/3)) = [0,2), [1,4), [3,5) (overlapping)
    pool = nn.AdaptiveAvgPool2d((3, 1))
    x = np.arange(5, dtype=np.float64).reshape(1, 5, 1, 1)
    np.testing.assert_allclose(pool(x)[0, :, 0, 0], [0.5, 2.0, 3.5], rtol=1e-15)
    dx = pool.backward(np.ones((1, 3, 1, 1)))
    np.testing.assert_allclose(dx[0, :, 0, 0], [1 / 2, 1 / 2 + 1 / 3, 1 / 3, 1 / 3 + 1 / 2, 1 / 2],
                               rtol=1e-15)


def test_global_average_pool(backend):
    x = np.arange(24, dtype=np.float64).reshape(1, 3, 4, 2)
    pool = nn.AdaptiveAvgPool2d(1)
    np.testing.assert_allclose(pool(x).reshape(2), [11.0, 12.0])  # mean of 0,2,..,22 and 1,..,23
    np.testing.assert_allclose(pool.backward(np.array([12.0, 24.0]).reshape(1, 1, 1, 2)),
                               np.broadcast_to([1.0, 2.0], (1, 3, 4, 2)))


# --------------------------------------------------------------- BatchNorm2d
def test_batchnorm_tiny_input_by_hand():
    # one channel holding 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased 5/3; eps = 0
    bn = nn.BatchNorm2d(1, eps=0.0, dtype=np.float64)
    bn.weight.data[...] = 2.0
    bn.bias.data[...] = 1.0
    x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
    x_hat = np.array([-3.0, -1.0, 1.0, 3.0]) / np.sqrt(5.0)  # (x - 2.5) / sqrt(1.25)
    np.testing.assert_allclose(bn(x).reshape(4), 2 * x_hat + 1, rtol=1e-14)
    assert bn.running_mean[0] == pytest.approx(0.1 * 2.5, rel=1e-14)
    assert bn.running_var[0] == pytest.approx(0.9 + 0.1 * 5 / 3, rel=1e-14)
    assert bn.num_batches_tracked == 1
    # dx for G = (1, 0, 0, 0): gamma/(M sqrt(var)) * (M G - sum G - x_hat sum(G x_hat))
    #   = 2/(4 sqrt(1.25)) * ((4,0,0,0) - 1 + (-9,-3,3,9)/5) = 0.5/sqrt(1.25) * (1.2,-1.6,-0.4,0.8)
    dx = bn.backward(np.array([1.0, 0.0, 0.0, 0.0]).reshape(1, 2, 2, 1))
    np.testing.assert_allclose(dx.reshape(4),
                               np.array([1.2, -1.6, -0.4, 0.8]) * 0.5 / np.sqrt(1.25), rtol=1e-13)
    assert bn.weight.grad[0] == pytest.approx(-3 / np.sqrt(5)) and bn.bias.grad[0] == 1.0
    # eval: the running statistics normalise, and dx is a plain scale
    bn.eval()
    y = bn(x)
    np.testing.assert_allclose(y.reshape(4), 2 * (x.reshape(4) - 0.25) / np.sqrt(0.9 + 0.5 / 3) + 1,
                               rtol=1e-14)
    dx = bn.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, np.full_like(x, 2 / np.sqrt(0.9 + 0.5 / 3)), rtol=1e-14)
    assert bn.num_batches_tracked == 1


def test_batchnorm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm2d(1, momentum=None, dtype=np.float64)
    for value in [1.0, 2.0, 6.0]:  # constant batches: mean = value, var = 0
        bn(np.full((2, 1, 1, 1), value) + np.array([-1.0, 1.0]).reshape(2, 1, 1, 1))
    assert bn.running_mean[0] == pytest.approx(3.0)      # (1 + 2 + 6) / 3
    assert bn.running_var[0] == pytest.approx(2.0)       # each batch: unbiased var of (v-1, v+1)
    assert bn.num_batches_tracked == 3


def test_batchnorm_statistics_are_per_channel():
    x = np.zeros((2, 1, 1, 2))
    x[:, 0, 0, 0] = [0.0, 2.0]     # channel 0: mean 1, var 1
    x[:, 0, 0, 1] = [10.0, 30.0]   # channel 1: mean 20, var 100
    bn = nn.BatchNorm2d(2, eps=0.0, dtype=np.float64)
    np.testing.assert_allclose(bn(x)[:, 0, 0, :], [[-1, -1], [1, 1]], rtol=1e-14)
    np.testing.assert_allclose(bn.running_mean, [0.1, 2.0])
    np.testing.assert_allclose(bn.running_var, [0.9 + 0.1 * 2, 0.9 + 0.1 * 200])


# ------------------------------------------------------------ Linear, Flatten
def test_linear_by_hand():
    lin = nn.Linear(2, 3, dtype=np.float64)
    lin.weight.data[...] = [[1, 2], [3, 4], [5, 6]]
    lin.bias.data[...] = [1, 0, -1]
    y = lin(np.array([[1.0, -1.0]]))
    np.testing.assert_array_equal(y, [[0, -1, -2]])   # (1-2+1, 3-4+0, 5-6-1)
    dx = lin.backward(np.array([[1.0, 1.0, 1.0]]))
    np.testing.assert_array_equal(dx, [[9, 12]])       # column sums of W
    np.testing.assert_array_equal(lin.weight.grad, [[1, -1]] * 3)
    np.testing.assert_array_equal(lin.bias.grad, [1, 1, 1])


def test_flatten_uses_pytorch_channel_major_order():
    i, j, c = np.meshgrid(np.arange(2), np.arange(2), np.arange(3), indexing="ij")
    x = (100 * c + 10 * i + j).astype(np.float64)[None]  # x[0, i, j, c] = 100c + 10i + j
    flat = nn.Flatten()
    y = flat(x)
    np.testing.assert_array_equal(y, [[0, 1, 10, 11, 100, 101, 110, 111, 200, 201, 210, 211]])
    np.testing.assert_array_equal(flat.backward(y), x)  # backward undoes the same permutation


def test_relu_and_identity_by_hand():
    relu = nn.ReLU()
    np.testing.assert_array_equal(relu(np.array([-1.0, 0.0, 2.0])), [0, 0, 2])
    np.testing.assert_array_equal(relu.backward(np.array([5.0, 6.0, 7.0])), [0, 0, 7])
    ident = nn.Identity()
    x = np.array([[1.0, -2.0]])
    assert ident(x) is x and ident.backward(x) is x


def test_sequential_applies_in_order_and_chains_backward():
    lin = nn.Linear(2, 3, dtype=np.float64)
    lin.weight.data[...] = [[1, 2], [3, 4], [5, 6]]
    lin.bias.data[...] = [1, 0, -1]
    net = nn.Sequential(lin, nn.ReLU())
    np.testing.assert_array_equal(net(np.array([[2.0, -1.0]])), [[1, 2, 3]])  # (1, 2, 3) > 0
    np.testing.assert_array_equal(net(np.array([[1.0, -1.0]])), [[0, 0, 0]])  # (0, -1, -2)
    np.testing.assert_array_equal(net.backward(np.ones((1, 3))), [[0, 0]])  # ReLU blocks all


# -------------------------------------------------------------------- loss
def test_cross_entropy_known_values():
    loss = nn.CrossEntropyLoss()
    assert loss(np.zeros((1, 3)), np.array([1])) == pytest.approx(np.log(3), rel=1e-14)
    # log(e + e^2 + e^3) - 3 = log(1 + e^-1 + e^-2)
    logits = np.array([[1.0, 2.0, 3.0]])
    assert loss(logits, np.array([2])) == pytest.approx(0.40760596444438013, rel=1e-14)
    np.testing.assert_allclose(loss.backward(), [[0.09003057, 0.24472847, 0.66524096 - 1]],
                               atol=1e-8)
    batch = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    assert loss(batch, np.array([1, 2])) == pytest.approx((np.log(3) + 0.40760596444438013) / 2)
    big = np.array([[1000.0, 0.0], [0.0, 1000.0]])  # stable: no overflow, exact answers
    assert loss(big, np.array([0, 1])) == 0.0
    assert loss(big, np.array([1, 0])) == pytest.approx(1000.0)


def test_cross_entropy_label_smoothing_known_values():
    # eps = 0.3, K = 3: q = (0.1, 0.1, 0.8); loss = logsumexp - sum q * logits
    #   = 3.40760596... - (0.1 + 0.2 + 2.4) = 0.70760596...
    loss = nn.CrossEntropyLoss(label_smoothing=0.3)
    assert loss(np.array([[1.0, 2.0, 3.0]]), np.array([2])) == pytest.approx(0.70760596444438,
                                                                             rel=1e-13)
    np.testing.assert_allclose(loss.backward(),
                               [[0.09003057 - 0.1, 0.24472847 - 0.1, 0.66524096 - 0.8]], atol=1e-8)
    total = nn.CrossEntropyLoss(label_smoothing=0.3, reduction="sum")
    two = np.array([[1.0, 2.0, 3.0]] * 2)
    assert total(two, np.array([2, 2])) == pytest.approx(2 * 0.70760596444438, rel=1e-13)
    np.testing.assert_allclose(total.backward(2.0)[0],
                               2 * np.array([0.09003057 - 0.1, 0.24472847 - 0.1, 0.66524096 - 0.8]),
                               atol=1e-7)
