"""Every layer's backward against centred finite differences, in float64.

``minitorch_cnn.gradcheck`` uses a random upstream gradient and checks the
input and every parameter; each test asserts that all of them were checked
and that the largest relative error is <= 1e-7 (typical values: 1e-10).
The first tests check the checker itself: it must catch a wrong backward.
"""
import copy

import numpy as np
import pytest

from minitorch_cnn import gradcheck, nn
from minitorch_cnn.gradcheck import numerical_gradient, relative_error

TOL = 1e-7


def assert_grads_ok(record_error, name, module, x, **kwargs):
    errors = gradcheck(module, x, **kwargs)
    expected = {"input"} | {k for k, _ in module.named_parameters()}
    if kwargs.get("check_params", True):
        assert set(errors) == expected  # nothing silently skipped
    assert max(errors.values()) <= TOL, errors
    record_error(name, "gradcheck", max(errors.values()))
    return errors


# -------------------------------------------------------------- the checker
class _ReLUWrongAtZeroSide(nn.ReLU):
    """A classic slip: the mask of the input's sign flipped."""

    def backward(self, grad_out):
        return grad_out - super().backward(grad_out)


class _BatchNormWithoutMeanTerm(nn.BatchNorm2d):
    """The backward of a plain scale: misses the two terms through mean and variance.

    Its error hides from an all-ones upstream gradient (the missing terms
    then sum to zero on the outputs), so this proves the checker's upstream is random.
    """

    def forward(self, x):
        self._x = x
        return super().forward(x)

    def backward(self, grad_out):
        super().backward(grad_out)  # the parameter gradients stay right
        inv_std = 1.0 / np.sqrt(self._x.var(axis=(0, 1, 2)) + self.eps)
        return grad_out * self.weight.data * inv_std


def test_gradcheck_catches_a_wrong_backward(rng):
    x = rng.standard_normal((2, 3, 3, 2))
    assert gradcheck(_ReLUWrongAtZeroSide(), x)["input"] > 0.5
    errors = gradcheck(_BatchNormWithoutMeanTerm(2), x)
    assert errors["input"] > 1e-2
    assert errors["weight"] <= TOL and errors["bias"] <= TOL


def test_gradcheck_leaves_the_module_alone(rng):
    bn = nn.BatchNorm2d(3)  # float32, train mode
    bn.weight.data[...] = [1.0, 2.0, 3.0]
    before = copy.deepcopy(bn.state_dict())
    gradcheck(bn, rng.standard_normal((2, 2, 2, 3)), train=False)
    after = bn.state_dict()
    assert bn.training and bn.weight.dtype == np.float32 and not bn.weight.grad.any()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert int(bn.num_batches_tracked) == 0


def test_numerical_gradient_of_a_known_function():
    v = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda: float((v ** 3).sum()), v)
    np.testing.assert_allclose(grad, 3 * v ** 2, rtol=1e-8)
    np.testing.assert_array_equal(v, [[1.0, -2.0], [0.5, 3.0]])  # restored


def test_numerical_gradient_of_a_non_contiguous_view():
    base = np.arange(6, dtype=np.float64).reshape(2, 3)
    v = base.T  # a view: the perturbation must reach the array f() reads
    grad = numerical_gradient(lambda: float((base * np.array([[1, 2, 3], [4, 5, 6]])).sum()), v)
    np.testing.assert_allclose(grad, [[1, 4], [2, 5], [3, 6]], rtol=1e-8)
    np.testing.assert_array_equal(base, np.arange(6).reshape(2, 3))


def test_relative_error():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) == pytest.approx(0.2 / 2.2)


# -------------------------------------------------------------------- layers
CONV_CASES = {
    "3x3 s1 p1": dict(cin=3, cout=4, k=3, s=1, p=1, bias=True, x=(2, 5, 4)),
    "3x3 s2 p1": dict(cin=2, cout=3, k=3, s=2, p=1, bias=True, x=(2, 6, 5)),
    "1x1 s2 no bias": dict(cin=3, cout=4, k=1, s=2, p=0, bias=False, x=(2, 5, 6)),
    "non-square 2x3 kernel": dict(cin=2, cout=3, k=(2, 3), s=(2, 1), p=(1, 0), bias=True,
                                  x=(2, 5, 7)),
    "batch of 1": dict(cin=2, cout=2, k=3, s=1, p=0, bias=True, x=(1, 4, 5)),
}


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv2d_gradcheck(backend, record_error, rng, case):
    conv = nn.Conv2d(case["cin"], case["cout"], case["k"], case["s"], case["p"],
                     bias=case["bias"], rng=rng)
    x = rng.standard_normal(case["x"] + (case["cin"],))
    assert_grads_ok(record_error, "Conv2d", conv, x)


@pytest.mark.parametrize("k, s, p, shape", [
    (3, 2, 1, (2, 5, 6, 2)),            # overlapping windows, padding
    (2, 2, 0, (1, 4, 4, 3)),            # batch of 1, tiling windows
    ((2, 3), (1, 2), (1, 1), (2, 5, 7, 2)),  # non-square kernel, stride and image
])
def test_maxpool2d_gradcheck(backend, record_error, rng, k, s, p, shape):
    x = rng.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) * 0.1
    # distinct values 0.1 apart: no window has a near-tie that a step of h could flip
    assert_grads_ok(record_error, "MaxPool2d", nn.MaxPool2d(k, s, p), x)


@pytest.mark.parametrize("k, s, p, shape", [
    (3, 2, 1, (2, 5, 6, 2)),
    ((2, 3), (2, 1), (1, 1), (1, 5, 7, 3)),
    (2, None, 0, (2, 4, 6, 1)),
])
def test_avgpool2d_gradcheck(backend, record_error, rng, k, s, p, shape):
    assert_grads_ok(record_error, "AvgPool2d", nn.AvgPool2d(k, s, p),
                    rng.standard_normal(shape))


@pytest.mark.parametrize("out, shape", [(1, (2, 3, 5, 2)), ((3, 2), (1, 5, 7, 2)),
                                        ((4, 3), (2, 3, 2, 1))])
def test_adaptive_avgpool2d_gradcheck(backend, record_error, rng, out, shape):
    assert_grads_ok(record_error, "AdaptiveAvgPool2d", nn.AdaptiveAvgPool2d(out),
                    rng.standard_normal(shape))


def _trained_batchnorm(rng, momentum=0.1, relu=False):
    """A BatchNorm2d with running statistics far from their (0, 1) start; relu=True: followed
    by a ReLU (the pair the fast path fuses, checked against this plain pair in test_fast)."""
    bn = nn.BatchNorm2d(3, momentum=momentum, dtype=np.float64)
    bn.weight.data[...] = rng.uniform(0.5, 2.0, 3)
    bn.bias.data[...] = rng.standard_normal(3)
    for step in range(5):
        bn(rng.standard_normal((4, 3, 3, 3)) * 2 + 3)
    assert np.all(bn.running_mean > 1) and np.all(bn.running_var > 1.5)
    return nn.Sequential(bn, nn.ReLU()) if relu else bn


@pytest.mark.parametrize("momentum, relu", [(0.1, False), (None, False), (0.1, True)])
def test_batchnorm2d_gradcheck_train(backend, record_error, rng, momentum, relu):
    bn = _trained_batchnorm(rng, momentum, relu)  # relu=True: BN then ReLU
    assert_grads_ok(record_error, "BatchNorm2d", bn, rng.standard_normal((2, 3, 4, 3)) + 1,
                    train=True)
    assert_grads_ok(record_error, "BatchNorm2d", bn, rng.standard_normal((1, 2, 3, 3)),
                    train=True)  # batch of 1, non-square image


@pytest.mark.parametrize("relu", [False, True])
def test_batchnorm2d_gradcheck_eval_after_training(backend, record_error, rng, relu):
    bn = _trained_batchnorm(rng, relu=relu)
    bn.eval()
    assert_grads_ok(record_error, "BatchNorm2d", bn, rng.standard_normal((2, 3, 2, 3)) + 3)


def test_relu_gradcheck(backend, record_error, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    x[np.abs(x) < 0.01] = 0.5  # no kink within reach of a finite-difference step
    assert_grads_ok(record_error, "ReLU", nn.ReLU(), x)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(backend, record_error, rng, bias):
    assert_grads_ok(record_error, "Linear", nn.Linear(7, 4, bias=bias, rng=rng),
                    rng.standard_normal((3, 7)))
    assert_grads_ok(record_error, "Linear", nn.Linear(5, 2, bias=bias, rng=rng),
                    rng.standard_normal((1, 5)))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 6)])
def test_flatten_and_identity_gradcheck(backend, record_error, rng, shape):
    x = rng.standard_normal(shape)
    assert_grads_ok(record_error, "Flatten", nn.Flatten(), x)
    assert_grads_ok(record_error, "Identity", nn.Identity(), x)


def test_sequential_gradcheck(backend, record_error, rng):
    net = nn.Sequential(
        nn.Conv2d(2, 3, 3, stride=1, padding=1, bias=False, rng=rng),  # no bias before BN
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(3, 4, (1, 2), stride=(1, 2), rng=rng),
        nn.AvgPool2d(2, stride=1, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Identity(),
        nn.Linear(4, 3, rng=rng),
    )
    x = rng.standard_normal((2, 5, 6, 2))
    errors = assert_grads_ok(record_error, "Sequential", net, x)
    assert {"0.weight", "1.weight", "1.bias", "4.weight", "4.bias", "9.weight"} <= set(errors)


# ---------------------------------------------------------------------- loss
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.9])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_gradcheck(record_error, rng, smoothing, reduction):
    logits = rng.standard_normal((4, 5)) * 2
    targets = np.array([0, 4, 2, 2])
    loss = nn.CrossEntropyLoss(label_smoothing=smoothing, reduction=reduction)
    scale = 1.7  # an upstream gradient other than 1
    loss(logits, targets)
    analytic = loss.backward(scale)
    numeric = numerical_gradient(lambda: scale * loss(logits, targets), logits)
    err = relative_error(analytic, numeric)
    assert err <= TOL
    record_error("CrossEntropy(ls>0)" if smoothing else "CrossEntropy", "gradcheck", err)
