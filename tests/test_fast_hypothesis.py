"""The fast layers and every convolution algorithm equal the plain layers, on generated cases.

Hypothesis builds a small network of the layers compile(model) lends twins to,
conv -> BN -> ReLU [-> an overlapping max-pool] -> (conv3x3 -> BN -> ReLU) x 2, and draws:
non-square inputs, kernel, stride and padding of the first convolution, biases
or none, which parameters are frozen, whether the first convolution returns an
input gradient, the fusions (a subset of ``minitorch_cnn.fast.FUSIONS``, read
when the test runs), the convolution algorithm (every one of
``algorithms.ALGORITHMS``, forced wherever it applies); train and eval, with
biases and without, are each a case of their own (10 examples each). The two
3x3 convolutions have the same shape, so they share their algorithm's
workspace (Winograd's is shared by every layer of the process) between a
forward and its backward. From a random state (tests/test_fast_random_states.py),
two steps, float64: outputs, input gradients, every learnable gradient and the
running statistics agree to 1e-10.
"""
import copy

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_fast_random_states import (TOL, compare, force_algorithm, grad_atol, learnable_grads,
                                     random_state, rel)

import minitorch_cnn
from minitorch_cnn import nn
from minitorch_cnn.fast import FUSIONS
from minitorch_cnn.fast.algorithms import ALGORITHMS
from minitorch_cnn.fast.conv import FastConv2d

SETTINGS = settings(max_examples=10, deadline=None)


class Net(nn.Module):
    def __init__(self, c, k, kernel, stride, padding, bias, pool, rng):
        super().__init__()
        f64 = dict(dtype=np.float64, rng=rng)
        self.conv0 = nn.Conv2d(c, k, kernel, stride, padding, bias=bias, **f64)
        self.bn0, self.relu0 = nn.BatchNorm2d(k, dtype=np.float64), nn.ReLU()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1) if pool else nn.Identity()
        for i in (1, 2):
            setattr(self, f"conv{i}", nn.Conv2d(k, k, 3, 1, 1, bias=bias, **f64))
            setattr(self, f"bn{i}", nn.BatchNorm2d(k, dtype=np.float64))
            setattr(self, f"relu{i}", nn.ReLU())

    def forward(self, x):
        x = self.pool(self.relu0(self.bn0(self.conv0(x))))
        for i in (1, 2):
            x = self[f"relu{i}"](self[f"bn{i}"](self[f"conv{i}"](x)))
        return x

    def backward(self, g):
        for i in (2, 1):
            g = self[f"conv{i}"].backward(self[f"bn{i}"].backward(self[f"relu{i}"].backward(g)))
        return self.conv0.backward(self.bn0.backward(self.relu0.backward(self.pool.backward(g))))

    def __getitem__(self, name):
        return getattr(self, name)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@SETTINGS
@given(n=st.integers(1, 3), h=st.integers(2, 9), w=st.integers(2, 9), c=st.integers(1, 5),
       k=st.integers(1, 6), kernel=st.integers(1, 3), stride=st.integers(1, 2),
       padding=st.integers(0, 2), pool=st.booleans(),
       frozen=st.integers(0, 2**12 - 1), input_grad=st.booleans(),
       fusions=st.integers(0, 2**len(FUSIONS) - 1), algorithm=st.sampled_from(sorted(ALGORITHMS)),
       seed=st.integers(0, 2**32 - 1))
def test_fast_layers_equal_the_plain_layers(n, h, w, c, k, kernel, stride, padding, bias, pool,
                                            frozen, input_grad, fusions, algorithm, training,
                                            seed):
    assume(h + 2 * padding >= kernel and w + 2 * padding >= kernel)
    oh, ow = (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1
    if pool:
        oh, ow = (oh - 1) // 2 + 1, (ow - 1) // 2 + 1
    assume(n * oh * ow >= 2)                            # BatchNorm needs two values a channel
    rng = np.random.default_rng(seed)
    plain = random_state(Net(c, k, kernel, stride, padding, bias, pool, rng), rng)
    for i, p in enumerate(plain.parameters()):          # frozen: bit i of ``frozen``
        p.requires_grad = not frozen >> i & 1
    plain.train(training)
    twin = copy.deepcopy(plain)
    chosen = tuple(f for i, f in enumerate(FUSIONS) if fusions >> i & 1)
    fast = minitorch_cnn.compile(twin, fusions=chosen, input_grad=input_grad,
                                 input_shape=(h, w, c))
    force_algorithm(fast, ALGORITHMS[algorithm], n)
    for step in range(2):
        x = rng.standard_normal((n, h, w, c))
        y0 = plain(x)
        g = rng.standard_normal(y0.shape)
        plain.zero_grad()
        dx0 = plain.backward(g)
        g0 = learnable_grads(plain)
        twin.zero_grad()
        y1 = fast(x)
        dx1 = fast.backward(g)
        where = (step, algorithm, chosen, fast.describe())
        assert rel(y1, y0) <= TOL, where
        if input_grad:
            assert rel(dx1, dx0) <= TOL, where
        else:
            assert dx1 is None
        compare(where, learnable_grads(twin), g0, grad_atol(g0, g))
        compare(where, twin.state_dict(), plain.state_dict(), 0.0)


@settings(max_examples=15, deadline=None)
@given(algorithm=st.sampled_from(sorted(ALGORITHMS)), h=st.integers(2, 6), w=st.integers(2, 6),
       c=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_same_shape_layers_forward_forward_backward_backward(algorithm, h, w, c, seed):
    """Two twins of one shape, run as a model runs them (A, B forward; B, A backward):
    the second forward must not spoil what the first backward reads."""
    rng = np.random.default_rng(seed)
    convs = [nn.Conv2d(c, c, 3, 1, 1, dtype=np.float64, rng=rng) for _ in range(2)]
    twins = [FastConv2d(conv) for conv in copy.deepcopy(convs)]
    cls = ALGORITHMS[algorithm]
    x = rng.standard_normal((2, h, w, c))
    assume(cls.applies(x.shape, convs[0].weight.shape, (1, 1), (1, 1)))
    for t in twins:
        t.algorithms[x.shape] = cls(x.shape, t.conv.weight.shape, (1, 1), (1, 1))
    g = rng.standard_normal(x.shape)
    y0 = convs[1](convs[0](x))
    want = convs[0].backward(convs[1].backward(g))
    y = twins[1].forward(twins[0].forward(x))
    np.testing.assert_allclose(y, y0, rtol=1e-10, atol=1e-12)
    got = twins[0].backward(twins[1].backward(g))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    for conv, t in zip(convs, twins):
        np.testing.assert_allclose(t.conv.weight.grad, conv.weight.grad, rtol=1e-10, atol=1e-12)
