"""Gradient checking by centred finite differences, in float64.

A gradient check compares the analytic gradients of ``backward`` with
numerical ones: for every entry v of a tensor,

    dL/dv ~ (L(v + h) - L(v - h)) / (2 h),      L = sum(module(x) * G),

where G is a *random* upstream gradient (with an all-ones G, the BatchNorm
and softmax checks would pass even with a wrong backward, because their
outputs sum to a constant). The error of a tensor is
``max|analytic - numeric| / max(max|analytic|, max|numeric|, tiny)``.
A tensor whose true gradient is exactly zero (a convolution bias feeding a
training-mode BatchNorm, say) has no scale to compare with: only rounding
noise is left on both sides, and its error reads about 1.
"""
import copy

import numpy as np


def numerical_gradient(f, v, h=1e-6):
    """Centred differences of the scalar function f() with respect to the array v (changed in place, restored).

    v may be any writable array, a non-contiguous view included: entries are
    perturbed through v itself, never through a reshaped copy.
    """
    grad = np.zeros(v.shape, dtype=np.float64)
    for i in np.ndindex(v.shape):
        old = v[i]
        v[i] = old + h
        up = f()
        v[i] = old - h
        down = f()
        v[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def relative_error(analytic, numeric):
    """max|a - n| / max(max|a|, max|n|): one number per tensor, robust to zero entries."""
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0), 1e-30)
    return float(np.abs(analytic - numeric).max(initial=0.0) / scale)


def gradcheck(module, x, h=1e-6, seed=0, check_params=True, train=None):
    """Check a module's backward against finite differences.

    The module is deep-copied and cast to float64 (yours is not changed), x
    is cast to float64, and a random upstream gradient G is drawn from
    ``seed``. ``train`` forces train (True) or eval (False) mode on the copy.
    Returns ``{"input": err, "<param name>": err, ...}`` of max relative
    errors; values around 1e-8 or below mean the backward is right.
    """
    m = copy.deepcopy(module).to(np.float64)
    if train is not None:
        m.train(train)
    x = np.array(x, dtype=np.float64)
    # a stream of its own: with plain default_rng(seed), a student's x drawn from the
    # same seed would come back as the upstream gradient (G = x makes BatchNorm's
    # true input gradient vanish, and the check meaningless)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x6C,)))
    buffers = {k: v.copy() for k, v in m.named_buffers()}  # e.g. BatchNorm's running stats

    def objective():
        m.load_state_dict(buffers, strict=False)  # every forward starts from the same state
        return float((m.forward(x) * upstream).sum())

    y = m.forward(x)
    m.load_state_dict(buffers, strict=False)
    upstream = rng.standard_normal(y.shape)
    m.zero_grad()
    dx = m.backward(upstream)
    analytic = {"input": dx}
    if check_params:
        analytic.update({name: p.grad.copy() for name, p in m.named_parameters()})
    errors = {"input": relative_error(dx, numerical_gradient(objective, x, h))}
    if check_params:
        for name, p in m.named_parameters():
            errors[name] = relative_error(analytic[name], numerical_gradient(objective, p.data, h))
    return errors
