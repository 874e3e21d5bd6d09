"""optim.Lookahead: airbench94's moving average of the weights, step by step, and its checkpoint.

The oracle is airbench94's loop written out on plain arrays: a snapshot at the
first multiple of ``every`` after ``start_step``, then at every later multiple
``e <- rho e + (1 - rho) w; w <- e`` with ``rho = 0.95^5 (t / T)^3``.
"""
import copy

import numpy as np
import pytest

from minitorch_cnn import nn, optim


def _model(rng):
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False, dtype=np.float64, rng=rng),
                         nn.BatchNorm2d(4, dtype=np.float64), nn.GELU(), nn.Flatten(),
                         nn.Linear(4 * 5 * 6, 3, dtype=np.float64, rng=rng))


def _batches(n, seed=5):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((4, 5, 6, 3)), rng.integers(0, 3, 4)) for _ in range(n)]


def _train(model, opt, batches, on_step=None):
    loss_fn = nn.CrossEntropyLoss()
    for x, y in batches:
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
        model.zero_grad()
        if on_step:
            on_step()


def _keys(model):
    return [k for k, v in model.state_dict().items() if v.dtype.kind == "f"]


def test_lookahead_follows_airbench_loop(rng):
    total, start, every = 23, 6, 5
    batches = _batches(total)
    a = _model(rng)
    b = copy.deepcopy(a)
    la = optim.Lookahead(optim.SGD(a.parameters(), lr=0.1, momentum=0.9, nesterov=True),
                         a, total_steps=total, start_step=start, every=every)
    _train(a, la, batches)

    # the oracle: plain SGD, the averaging done by hand on b's state
    opt = optim.SGD(b.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    ema, t, events = None, 0, []

    def average():
        nonlocal ema, t
        t += 1
        if t > start and t % every == 0:
            state = b.state_dict()
            if ema is None:
                ema = {k: state[k].copy() for k in _keys(b)}
                events.append((t, "snapshot"))
            else:
                rho = 0.95 ** 5 * (t / total) ** 3
                for k in ema:
                    ema[k] = rho * ema[k] + (1 - rho) * state[k]
                b.load_state_dict({**state, **ema})
                events.append((t, round(rho, 6)))
    _train(b, opt, batches, average)
    assert events == [(10, "snapshot"), (15, round(0.95 ** 5 * (15 / 23) ** 3, 6)),
                      (20, round(0.95 ** 5 * (20 / 23) ** 3, 6))]
    sa, sb = a.state_dict(), b.state_dict()
    for k in sb:
        np.testing.assert_allclose(sa[k], sb[k], rtol=1e-13, atol=1e-15, err_msg=k)
    for k in ema:                           # BatchNorm's running statistics are averaged too
        np.testing.assert_allclose(la.ema[k], ema[k], rtol=1e-13, atol=1e-15, err_msg=k)
    assert "1.running_var" in la.ema and "1.num_batches_tracked" not in la.ema
    # steps 21-23 moved the weights away from the average; sync() brings them back
    assert not np.allclose(a[0].weight.data, la.ema["0.weight"])
    la.sync()
    np.testing.assert_array_equal(a[0].weight.data, la.ema["0.weight"])
    np.testing.assert_array_equal(a[1].running_mean, la.ema["1.running_mean"])


def test_lookahead_resume_is_bit_exact(rng):
    total, batches = 17, _batches(17)
    m0 = _model(rng)

    def fresh(model):
        return optim.Lookahead(optim.SGD(model.parameters(), lr=0.05, momentum=0.85,
                                         nesterov=True, weight_decay=1e-3),
                               model, total_steps=total, start_step=3, every=2)
    whole = copy.deepcopy(m0)
    la = fresh(whole)
    _train(whole, la, batches)

    first = copy.deepcopy(m0)
    la1 = fresh(first)
    _train(first, la1, batches[:9])
    saved_model, saved_opt = first.state_dict(), la1.state_dict()
    assert saved_opt["lookahead.step"] == 9 and "lookahead.ema.0.weight" in saved_opt
    second = _model(np.random.default_rng(99))           # other weights: all must be restored
    second.load_state_dict(saved_model)
    la2 = fresh(second)
    la2.load_state_dict({k: np.asarray(v) for k, v in saved_opt.items()})
    _train(second, la2, batches[9:])
    for k, v in whole.state_dict().items():
        np.testing.assert_array_equal(second.state_dict()[k], v, err_msg=k)


def test_lookahead_is_driven_like_an_optimizer(rng):
    m = _model(rng)
    sgd = optim.SGD(m.parameters(), lr=1.0, momentum=0.9)
    la = optim.Lookahead(sgd, m, total_steps=10)
    sched = optim.make_scheduler("cosine", la, 10)
    assert sgd.lr == la.lr == 1.0
    sched.step()
    assert sgd.lr == la.lr == pytest.approx(0.5 * (1 + np.cos(np.pi / 10)))
    la.momentum = 0.5
    assert sgd.momentum == 0.5
    assert la.state_dict()["lookahead.step"] == 0
    with pytest.raises(ValueError, match="missing key lookahead.step"):
        la.load_state_dict(sgd.state_dict())
    bad = dict(la.state_dict(), **{"lookahead.ema.0.weight": np.zeros(3)})
    with pytest.raises(ValueError, match=r"nothing was loaded; missing ema keys: .*1\.bias"):
        la.load_state_dict(bad)
    with pytest.raises(ValueError, match="every must be a positive integer, got 0"):
        optim.Lookahead(sgd, m, total_steps=10, every=0)
    with pytest.raises(TypeError, match="expected an optimizer, got Sequential"):
        optim.Lookahead(m, m, total_steps=10)


# ---------------------------------------------------- airbench's lr schedule
@pytest.mark.parametrize("total", [426, 476, 10])
def test_triangle_schedule_is_airbenchs(total):
    """lr(t) of TriangleLR against airbench94's triangle(): np.interp through (0, 0.2),
    (int(0.23 T), 1), (T, 0.07), for every step t = 0..T."""
    sgd = optim.SGD([nn.Parameter(np.zeros(2))], lr=1.5)
    sched = optim.make_scheduler("triangle", sgd, total, start=0.2, peak=0.23, end=0.07)
    got = [sgd.lr] + [sched.step() for _ in range(total)]
    want = 1.5 * np.interp(np.arange(total + 1), [0, int(0.23 * total), total], [0.2, 1, 0.07])
    np.testing.assert_allclose(got, want, rtol=1e-14)
    with pytest.raises(ValueError, match=f"tried to step {total + 1} times"):
        sched.step()
    with pytest.raises(ValueError, match=r"peak must be in \[0, 1\), got 1.0"):
        optim.TriangleLR(sgd, 10, peak=1.0)
