"""``p.grad = None``, the PyTorch idiom: accepted, allocated again by backward, skipped by
the optimizers (PyTorch as the oracle), and ``zero_grad(set_to_none=True)``."""
import numpy as np
import pytest

from minitorch_cnn import nn
from minitorch_cnn.nn.module import Parameter
from minitorch_cnn.optim import SGD, Adam, AdamW


def mlp(rng):
    return nn.Sequential(nn.Linear(3, 4, rng=rng), nn.ReLU(), nn.Linear(4, 2, rng=rng)).to(
        np.float64)


def test_backward_after_set_to_none_equals_backward_after_zeroing(rng):
    a = mlp(rng)
    b = mlp(np.random.default_rng(0))
    b.load_state_dict(a.state_dict())
    x, g = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    for m in (a, b):                      # some stale gradient in both
        m(x)
        m.backward(g)
    a.zero_grad()
    b.zero_grad(set_to_none=True)
    assert all(p.grad_is_none for p in b.parameters())
    assert not any(p.grad_is_none for p in a.parameters())
    for m in (a, b):
        m(x)
        m.backward(2 * g)
    for (k, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert not pb.grad_is_none
        assert pa.grad.any(), k
        np.testing.assert_array_equal(pa.grad, pb.grad, err_msg=k)


def test_grad_setter_accepts_none_or_a_matching_array_only():
    p = Parameter(np.ones((2, 3), np.float32))
    p.grad = None
    assert p.grad_is_none
    p.grad += 1.0                              # allocates zeros, then adds
    np.testing.assert_array_equal(p.grad, np.ones((2, 3), np.float32))
    assert not p.grad_is_none
    with pytest.raises(ValueError, match=r"shape \(2, 3\) and dtype float32, got \(3, 2\)"):
        p.grad = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="dtype float32, got .* float64"):
        p.grad = np.zeros((2, 3))
    with pytest.raises(TypeError, match="None or a numpy array, got list"):
        p.grad = [[0.0] * 3] * 2
    np.testing.assert_array_equal(p.grad, 1.0)  # the refused values changed nothing


def test_zero_grad_keeps_none_and_to_keeps_none(rng):
    m = mlp(rng)
    m[0].weight.grad = None
    m.zero_grad()                              # in place for the others, None stays None
    assert m[0].weight.grad_is_none and not m[0].bias.grad_is_none
    m.to(np.float32)
    assert m[0].weight.grad_is_none and m[0].bias.grad.dtype == np.float32


def _step_both(torch, ours_cls, torch_cls, kw, none_at, n_steps=5, seed=0):
    """Run ours and torch's optimizer on the same parameters and gradients, where
    ``none_at(step, i)`` says whether parameter i's gradient is None at that step."""
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (2, 2)]
    ours = [Parameter(rng.standard_normal(s)) for s in shapes]
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours]
    opt, topt = ours_cls(ours, **kw), torch_cls(theirs, foreach=False, **kw)
    for t in range(n_steps):
        for i, (p, tp) in enumerate(zip(ours, theirs)):
            g = rng.standard_normal(p.shape)
            if none_at(t, i):
                p.grad, tp.grad = None, None
            else:
                p.grad, tp.grad = g, torch.tensor(g)
        opt.step()
        topt.step()
    for i, (p, tp) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=f"parameter {i}")
    return ours, opt


@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.1, momentum=0.9, weight_decay=0.01),
                                dict(lr=0.1, momentum=0.9, nesterov=True)])
def test_sgd_skips_none_gradients_as_pytorch(torch, kw):
    """Parameter 1 is None on steps 1 and 3 (its momentum buffer then waits), parameter 2
    always: it never moves, not even by weight decay."""
    ours, _ = _step_both(torch, SGD, torch.optim.SGD, kw,
                         lambda t, i: i == 2 or (i == 1 and t in (1, 3)))
    before = np.random.default_rng(0)
    for s in [(3, 4), (4,)]:
        before.standard_normal(s)
    np.testing.assert_array_equal(ours[2].data, before.standard_normal((2, 2)))


@pytest.mark.parametrize("cls, name", [(Adam, "Adam"), (AdamW, "AdamW")])
def test_adam_skips_a_parameter_whose_gradient_is_always_none(torch, cls, name):
    """Adam counts the steps for all parameters together (PyTorch per parameter), so the
    two agree when the same parameters take every step -- docs/training.md says so."""
    _, opt = _step_both(torch, cls, getattr(torch.optim, name),
                        dict(lr=0.01, weight_decay=0.1), lambda t, i: i == 1)
    assert opt.state[1] == {}


def test_optimizer_state_of_a_never_stepped_parameter_round_trips(rng):
    params = [Parameter(rng.standard_normal(3)), Parameter(rng.standard_normal(2))]
    params[0].grad = rng.standard_normal(3)
    params[1].grad = None
    opt = Adam(params, lr=0.1)
    opt.step()
    state = opt.state_dict()
    assert state["no_state"].tolist() == [1]
    fresh = Adam(params, lr=0.1)
    fresh.load_state_dict(state)               # not "state arrays are missing"
    assert fresh.state[1] == {} and set(fresh.state[0]) == {"exp_avg", "exp_avg_sq"}
    del state["state.0.exp_avg"]               # a lost array is still refused
    with pytest.raises(ValueError, match=r"state arrays are missing \(1\): state\.0\.exp_avg"):
        Adam(params, lr=0.1).load_state_dict(state)
