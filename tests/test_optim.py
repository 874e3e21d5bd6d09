"""Tests of minitorch_cnn.optim: optimisers, schedules, state dicts.

Parity tests against PyTorch skip (with a reason) when torch is absent; the
hand-computed and round-trip tests always run.
"""
import math
import tracemalloc

import numpy as np
import pytest

from minitorch_cnn.nn.module import Parameter
from minitorch_cnn.optim import (SGD, Adam, AdamW, ConstantLR, CosineAnnealingLR, LinearWarmup,
                                 OneCycleLR, StepLR, make_scheduler)

SHAPES = [(4, 3, 3, 3), (7, 5), (6,), ()]
TOL = 1e-10


def _torch():
    return pytest.importorskip(
        "torch", reason="PyTorch not installed: parity tests need the 'torch' extra")


def make_params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]


def grads_for(step, dtype=np.float64):
    """Deterministic random gradients for a given step index."""
    rng = np.random.default_rng(1000 + step)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def run_steps(opt, params, start, stop, sched=None):
    for k in range(start, stop):
        for p, g in zip(params, grads_for(k, params[0].data.dtype)):
            p.grad[...] = g
        opt.step()
        if sched is not None:
            sched.step()


def max_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    abs_err = np.max(np.abs(a - b), initial=0.0)
    rel_err = np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12), initial=0.0)
    return abs_err, rel_err


# ------------------------------------------------------------ torch parity
SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=1e-2),
    dict(lr=0.05, momentum=0.8, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4),
    dict(lr=0.02, momentum=0.9, dampening=0.1, weight_decay=1e-3),
]
ADAM_CASES = [
    (Adam, "Adam", dict(lr=1e-2)),
    (Adam, "Adam", dict(lr=1e-2, weight_decay=0.1)),
    (Adam, "Adam", dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2)),
    (AdamW, "AdamW", dict(lr=1e-2)),
    (AdamW, "AdamW", dict(lr=1e-2, weight_decay=0.1)),
]


def _parity(torch, ours_cls, torch_cls, kw, state_map, n_steps=8):
    params = make_params()
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = ours_cls(params, **kw)
    topt = torch_cls(tparams, foreach=False, **kw)
    worst = 0.0
    for k in range(n_steps):
        for p, tp, g in zip(params, tparams, grads_for(k)):
            p.grad[...] = g
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        for i, (p, tp) in enumerate(zip(params, tparams)):
            pairs = [(p.data, tp.detach().numpy())]
            for ours_name, torch_name in state_map.items():
                pairs.append((opt.state[i][ours_name], topt.state[tp][torch_name].numpy()))
            for a, b in pairs:
                abs_err, rel_err = max_err(a, b)
                worst = max(worst, abs_err, rel_err)
                assert abs_err <= TOL and rel_err <= TOL, (k, i, abs_err, rel_err)
    return worst


@pytest.mark.torch
@pytest.mark.parametrize("kw", SGD_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_sgd_matches_torch(kw):
    torch = _torch()
    state_map = {"momentum_buffer": "momentum_buffer"} if kw.get("momentum") else {}
    _parity(torch, SGD, torch.optim.SGD, kw, state_map)


@pytest.mark.torch
@pytest.mark.parametrize("cls,tname,kw", ADAM_CASES,
                         ids=[f"{t}-{','.join(f'{k}={v}' for k, v in kw.items())}"
                              for _, t, kw in ADAM_CASES])
def test_adam_matches_torch(cls, tname, kw):
    torch = _torch()
    _parity(torch, cls, getattr(torch.optim, tname), kw,
            {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"})


@pytest.mark.torch
@pytest.mark.parametrize("cls,tname,kw", [
    (SGD, "SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (Adam, "Adam", dict(lr=1e-2, weight_decay=1e-2)),
    (AdamW, "AdamW", dict(lr=1e-2, weight_decay=0.1)),
])
def test_float32_matches_torch_float32(cls, tname, kw):
    torch = _torch()
    params = make_params(np.float32)
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = cls(params, **kw)
    topt = getattr(torch.optim, tname)(tparams, foreach=False, **kw)
    for k in range(6):
        for p, tp, g in zip(params, tparams, grads_for(k, np.float32)):
            p.grad[...] = g
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams):
        assert p.data.dtype == np.float32
        # derived: elementwise updates (no BLAS), <= ~10 roundings a step on either side,
        # 6 steps: 2 * 6 * 10 * 2**-24 = 7e-6 <= rtol; atol: the same on updates of size lr
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def _torch_lrs(torch, make_sched, n, lr=0.1, momentum=0.0):
    w = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([w], lr=lr, momentum=momentum)
    sched = make_sched(topt)
    lrs, moms = [topt.param_groups[0]["lr"]], [topt.param_groups[0]["momentum"]]
    for _ in range(n):
        topt.step()
        sched.step()
        lrs.append(topt.param_groups[0]["lr"])
        moms.append(topt.param_groups[0]["momentum"])
    return np.array(lrs), np.array(moms)


def _our_lrs(make_sched, n, lr=0.1, momentum=0.0):
    opt = SGD([Parameter(np.zeros(1))], lr=lr, momentum=momentum)
    sched = make_sched(opt)
    lrs, moms = [opt.lr], [opt.momentum]
    for _ in range(n):
        opt.step()
        sched.step()
        lrs.append(opt.lr)
        moms.append(opt.momentum)
    return np.array(lrs), np.array(moms)


@pytest.mark.torch
@pytest.mark.parametrize("name,n,ours,theirs", [
    ("step", 50, lambda o: StepLR(o, 7, gamma=0.5),
     lambda t, o: t.optim.lr_scheduler.StepLR(o, 7, gamma=0.5)),
    ("cosine", 60, lambda o: CosineAnnealingLR(o, T_max=60),
     lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=60)),
    ("cosine-eta-min-past-Tmax", 90, lambda o: CosineAnnealingLR(o, T_max=40, eta_min=1e-3),
     lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=40, eta_min=1e-3)),
    ("onecycle-cos", 100, lambda o: OneCycleLR(o, max_lr=0.4, total_steps=100),
     lambda t, o: t.optim.lr_scheduler.OneCycleLR(o, max_lr=0.4, total_steps=100,
                                                  cycle_momentum=False)),
    ("onecycle-linear", 37,
     lambda o: OneCycleLR(o, max_lr=1.0, total_steps=37, pct_start=0.25,
                          anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0),
     lambda t, o: t.optim.lr_scheduler.OneCycleLR(
         o, max_lr=1.0, total_steps=37, pct_start=0.25, anneal_strategy="linear",
         div_factor=10.0, final_div_factor=100.0, cycle_momentum=False)),
    ("constant-factor", 10, lambda o: ConstantLR(o, factor=0.5, total_iters=4),
     lambda t, o: t.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=4)),
])
def test_schedule_matches_torch(name, n, ours, theirs):
    torch = _torch()
    expected, _ = _torch_lrs(torch, lambda o: theirs(torch, o), n)
    got, _ = _our_lrs(ours, n)
    assert got.shape == expected.shape
    abs_err, rel_err = max_err(got, expected)
    assert abs_err <= TOL and rel_err <= 1e-9, (abs_err, rel_err)


@pytest.mark.torch
def test_onecycle_momentum_cycling_matches_torch():
    torch = _torch()
    n = 50
    t_lrs, t_moms = _torch_lrs(
        torch, lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.3, total_steps=n),
        n, momentum=0.9)
    lrs, moms = _our_lrs(lambda o: OneCycleLR(o, max_lr=0.3, total_steps=n,
                                             cycle_momentum=True), n, momentum=0.9)
    assert max(max_err(lrs, t_lrs)) <= TOL
    assert max(max_err(moms, t_moms)) <= TOL


@pytest.mark.torch
def test_linear_warmup_matches_torch_sequential():
    torch = _torch()
    import warnings
    W, n = 5, 30
    lrs, _ = _our_lrs(lambda o: LinearWarmup(o, W, after=CosineAnnealingLR(o, T_max=n - W)), n)

    def torch_sched(o):
        lin = torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / W, end_factor=1.0,
                                                total_iters=W - 1)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=n - W)
        return torch.optim.lr_scheduler.SequentialLR(o, [lin, cos], milestones=[W])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_lrs, _ = _torch_lrs(torch, torch_sched, n)
    assert max(max_err(lrs, t_lrs)) <= 1e-9


# ------------------------------------------------------- hand-computed values
def test_sgd_momentum_by_hand():
    p = Parameter(np.array([1.0]))
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad[...] = 1.0
    opt.step()                       # b = 1, p = 1 - 0.1 = 0.9
    assert p.data[0] == pytest.approx(0.9, abs=1e-15)
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], [1.0])
    opt.step()                       # b = 0.9 + 1 = 1.9, p = 0.9 - 0.19
    assert p.data[0] == pytest.approx(0.71, abs=1e-15)
    assert opt.state[0]["momentum_buffer"][0] == pytest.approx(1.9, abs=1e-15)


def test_sgd_nesterov_weight_decay_dampening_by_hand():
    p = Parameter(np.array([1.0]))
    opt = SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    p.grad[...] = 1.0
    opt.step()                       # b = 1, g = 1 + 0.9 = 1.9
    assert p.data[0] == pytest.approx(0.81, abs=1e-15)
    opt.step()                       # b = 1.9, g = 1 + 1.71 = 2.71
    assert p.data[0] == pytest.approx(0.539, abs=1e-15)

    q = Parameter(np.array([2.0]))
    opt = SGD([q], lr=0.1, weight_decay=0.1)
    q.grad[...] = 0.5
    opt.step()                       # g = 0.5 + 0.2 = 0.7
    assert q.data[0] == pytest.approx(1.93, abs=1e-15)
    assert q.grad[0] == 0.5          # the gradient itself is not modified

    r = Parameter(np.array([0.0]))
    opt = SGD([r], lr=1.0, momentum=0.5, dampening=0.5)
    r.grad[...] = 1.0
    opt.step()                       # b = 1 (no dampening on the first step)
    opt.step()                       # b = 0.5 + 0.5 = 1
    assert r.data[0] == pytest.approx(-2.0, abs=1e-15)


def test_adam_first_steps_by_hand():
    p = Parameter(np.array([1.0, -1.0]))
    opt = Adam([p], lr=0.1)
    p.grad[...] = [2.0, -0.5]
    opt.step()                       # m_hat = g, v_hat = g^2: p -= lr * g / (|g| + eps)
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 2 / (2 + 1e-8),
                                        -1.0 + 0.1 * 0.5 / (0.5 + 1e-8)], rtol=0, atol=1e-15)
    np.testing.assert_allclose(opt.state[0]["exp_avg"], [0.2, -0.05], atol=1e-15)
    np.testing.assert_allclose(opt.state[0]["exp_avg_sq"], [0.004, 0.00025], atol=1e-15)
    before = p.data.copy()
    p.grad[...] = [1.0, 1.0]
    opt.step()
    m = 0.9 * np.array([0.2, -0.05]) + 0.1
    v = 0.999 * np.array([0.004, 0.00025]) + 0.001
    expected = before - 0.1 / (1 - 0.9 ** 2) * m / (np.sqrt(v) / math.sqrt(1 - 0.999 ** 2) + 1e-8)
    np.testing.assert_allclose(p.data, expected, rtol=0, atol=1e-14)


def test_adamw_decay_is_decoupled():
    p, q = Parameter(np.array([2.0])), Parameter(np.array([2.0]))
    AdamW([p], lr=0.1, weight_decay=0.5).step()   # zero gradient: only the decay acts
    Adam([q], lr=0.1, weight_decay=0.5).step()    # L2: g = 1, Adam moves by ~lr
    assert p.data[0] == pytest.approx(2.0 * (1 - 0.05), abs=1e-15)
    assert q.data[0] == pytest.approx(2.0 - 0.1, abs=1e-7)


def test_schedules_by_hand():
    def seq(make, n, lr=1.0):
        opt = SGD([Parameter(np.zeros(1))], lr=lr)
        s = make(opt)
        out = [opt.lr]
        for _ in range(n):
            s.step()
            out.append(opt.lr)
        assert s.get_lr() == opt.lr
        return out

    assert seq(lambda o: StepLR(o, 2, gamma=0.5), 5) == [1, 1, 0.5, 0.5, 0.25, 0.25]
    np.testing.assert_allclose(seq(lambda o: CosineAnnealingLR(o, 4), 4),
                               [1, (1 + math.sqrt(0.5)) / 2, 0.5, (1 - math.sqrt(0.5)) / 2, 0],
                               atol=1e-15)
    assert seq(lambda o: ConstantLR(o), 3) == [1, 1, 1, 1]
    assert seq(lambda o: LinearWarmup(o, 4), 5) == [0.25, 0.5, 0.75, 1, 1, 1]
    warm_cos = seq(lambda o: LinearWarmup(o, 2, after=CosineAnnealingLR(o, 2, eta_min=0.0)), 4)
    np.testing.assert_allclose(warm_cos, [0.5, 1, 1, 0.5, 0], atol=1e-15)
    oc = seq(lambda o: OneCycleLR(o, max_lr=2.0, total_steps=10, pct_start=0.3), 10)
    assert oc[0] == pytest.approx(2.0 / 25, abs=1e-15)
    assert oc[2] == pytest.approx(2.0, abs=1e-15)      # end of warm-up: 0.3 * 10 - 1
    assert oc[9] == pytest.approx(2.0 / 25 / 1e4, abs=1e-15)
    assert max(oc) == oc[2]


def test_make_scheduler():
    opt = SGD([Parameter(np.zeros(1))], lr=0.2)
    assert isinstance(make_scheduler("constant", opt, 10), ConstantLR)
    s = make_scheduler("cosine", opt, 100, warmup_steps=10)
    assert isinstance(s, LinearWarmup) and s.after.T_max == 90
    assert opt.lr == pytest.approx(0.02)
    s = make_scheduler("step", opt, 90)
    assert s.step_size == 30
    s = make_scheduler("onecycle", SGD([Parameter(np.zeros(1))], lr=0.4), 50, pct_start=0.2)
    assert s.max_lr == 0.4 and s.total_steps == 50
    with pytest.raises(ValueError, match="unknown schedule 'linear'.*constant, step, cosine"):
        make_scheduler("linear", opt, 10)
    with pytest.raises(ValueError, match="own warm-up"):
        make_scheduler("onecycle", opt, 10, warmup_steps=2)
    with pytest.raises(ValueError, match="warmup_steps"):
        make_scheduler("cosine", opt, 10, warmup_steps=10)


# --------------------------------------------------- dtype and allocations
@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.2),
    lambda ps: Adam(ps, lr=1e-3, weight_decay=1e-2),
    lambda ps: AdamW(ps, lr=1e-3),
], ids=["sgd", "sgd-nesterov-wd", "sgd-dampening", "adam-wd", "adamw"])
def test_float32_stays_float32(make):
    params = make_params(np.float32)
    opt = make(params)
    sched = CosineAnnealingLR(opt, T_max=4)
    run_steps(opt, params, 0, 4, sched)
    for i, p in enumerate(params):
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
        assert np.all(np.isfinite(p.data))
        for arr in opt.state[i].values():
            assert arr.dtype == np.float32
    for v in opt.state_dict().values():
        assert isinstance(v, np.ndarray)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: Adam(ps, lr=1e-3, weight_decay=1e-2),
], ids=["sgd", "adam"])
def test_step_allocates_no_parameter_sized_arrays(make):
    p = Parameter(np.ones((500, 400)))            # 1.6 MB
    opt = make([p])
    p.grad[...] = 0.5
    opt.step()                                    # creates the state and scratch space
    tracemalloc.start()
    try:
        for _ in range(3):
            opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < p.data.nbytes // 10, peak


def test_zero_grad():
    params = make_params()
    opt = SGD(params, lr=0.1)
    for p in params:
        p.grad[...] = 3.0
    grads = [p.grad for p in params]
    opt.zero_grad()
    for p, g in zip(params, grads):
        assert p.grad is g and not np.any(p.grad)


# ------------------------------------------------------------ state dicts
@pytest.mark.parametrize("make_opt,make_sched", [
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
     lambda o: CosineAnnealingLR(o, T_max=10)),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.1),
     lambda o: StepLR(o, 3, gamma=0.5)),
    (lambda ps: Adam(ps, lr=1e-2, weight_decay=1e-2),
     lambda o: OneCycleLR(o, max_lr=0.05, total_steps=10, cycle_momentum=True)),
    (lambda ps: AdamW(ps, lr=1e-2), lambda o: make_scheduler("cosine", o, 10, warmup_steps=3)),
], ids=["sgd-nesterov-cosine", "sgd-dampening-step", "adam-onecycle", "adamw-warmup-cosine"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_state_dict_round_trip_is_bit_identical(tmp_path, make_opt, make_sched, dtype):
    n, k = 10, 4
    # uninterrupted run
    ref = make_params(dtype)
    ref_opt = make_opt(ref)
    ref_sched = make_sched(ref_opt)
    run_steps(ref_opt, ref, 0, n, ref_sched)

    # interrupted run: k steps, save through np.savez, rebuild everything, load, finish
    a = make_params(dtype)
    opt = make_opt(a)
    sched = make_sched(opt)
    run_steps(opt, a, 0, k, sched)
    sd = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    np.savez(tmp_path / "opt.npz", **sd)
    np.savez(tmp_path / "sched.npz", **sched.state_dict())
    np.savez(tmp_path / "params.npz", *[p.data for p in a])

    b = make_params(dtype, seed=99)               # different values: all must come from disk
    with np.load(tmp_path / "params.npz") as f:
        for i, p in enumerate(b):
            p.data[...] = f[f"arr_{i}"]
    opt2 = make_opt(b)
    sched2 = make_sched(opt2)
    with np.load(tmp_path / "opt.npz") as f:
        opt2.load_state_dict(f)
    with np.load(tmp_path / "sched.npz") as f:
        sched2.load_state_dict(dict(f))
    assert opt2.lr == opt.lr and opt2.step_count == k
    run_steps(opt2, b, k, n, sched2)

    for p, q in zip(ref, b):
        assert q.data.dtype == dtype
        np.testing.assert_array_equal(p.data, q.data)
    for s_ref, s_new in zip(ref_opt.state, opt2.state):
        assert s_ref.keys() == s_new.keys()
        for name in s_ref:
            np.testing.assert_array_equal(s_ref[name], s_new[name])
    assert ref_opt.lr == opt2.lr


def test_state_dict_keys_and_types():
    params = make_params()
    opt = Adam(params, lr=1e-3)
    sd0 = opt.state_dict()
    assert set(sd0) == {"lr", "step", "num_params", "beta1", "beta2", "eps", "weight_decay"}
    run_steps(opt, params, 0, 2)
    sd = opt.state_dict()
    assert sd["step"].shape == () and sd["step"] == 2 and sd["lr"].dtype == np.float64
    assert sd["state.0.exp_avg"].shape == SHAPES[0]
    assert sd["state.3.exp_avg_sq"].shape == ()
    sd["state.1.exp_avg"][...] = 123.0            # a snapshot, not a view of the state
    assert not np.any(opt.state[1]["exp_avg"] == 123.0)
    opt_sgd = SGD(make_params(), lr=0.1, momentum=0.9)
    assert set(opt_sgd.state_dict()) == {"lr", "step", "num_params", "momentum", "dampening",
                                         "weight_decay", "nesterov"}
    sched = LinearWarmup(opt, 3, after=StepLR(opt, 2))
    assert set(sched.state_dict()) == {"last_step", "base_lr", "after.last_step",
                                       "after.base_lr"}


def test_load_state_dict_rejects_bad_dicts_and_loads_nothing():
    params = make_params()
    opt = SGD(params, lr=0.1, momentum=0.9)
    run_steps(opt, params, 0, 2)
    good = opt.state_dict()

    target = SGD(make_params(), lr=0.5, momentum=0.5)
    before = (target.lr, target.momentum, target.step_count, [dict(s) for s in target.state])

    bad = dict(good)
    bad["state.1.momentum_buffer"] = np.zeros((5, 7))
    bad["state.2.momentum_buffer"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"nothing was loaded.*mis-shaped keys \(2\).*"
                                         r"state\.1\.momentum_buffer: expected \(7, 5\)"):
        target.load_state_dict(bad)

    bad = dict(good)
    del bad["state.3.momentum_buffer"], bad["lr"]
    bad["state.9.momentum_buffer"] = np.zeros(1)
    with pytest.raises(ValueError) as info:
        target.load_state_dict(bad)
    msg = str(info.value)
    assert "missing keys: lr" in msg and "unexpected keys (1): state.9.momentum_buffer" in msg

    bad = dict(good)
    del bad["state.3.momentum_buffer"]
    with pytest.raises(ValueError, match=r"state arrays are missing \(1\): state\.3\."):
        target.load_state_dict(bad)

    with pytest.raises(ValueError, match="missing keys: beta1, beta2, eps.*unexpected keys"):
        Adam(make_params(), lr=1e-3).load_state_dict(good)   # an SGD checkpoint into Adam

    with pytest.raises(ValueError, match="checkpoint is for 4 parameters, this optimizer has 2"):
        SGD(make_params()[:2], lr=0.1, momentum=0.9).load_state_dict(good)

    bad = dict(good, lr=np.array(-1.0))
    with pytest.raises(ValueError, match="invalid learning rate"):
        target.load_state_dict(bad)

    after = (target.lr, target.momentum, target.step_count, [dict(s) for s in target.state])
    assert after == before                         # nothing half-loaded

    target.load_state_dict(good)
    assert target.lr == 0.1 and target.momentum == 0.9 and target.step_count == 2


def test_schedule_load_state_dict_rejects_bad_dicts():
    opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    s = LinearWarmup(opt, 2, after=StepLR(opt, 2))
    with pytest.raises(ValueError, match="missing keys: after.last_step"):
        s.load_state_dict({"last_step": np.array(3), "base_lr": np.array(1.0),
                           "after.base_lr": np.array(1.0)})
    with pytest.raises(ValueError, match="unexpected keys: foo"):
        StepLR(opt, 2).load_state_dict({"last_step": np.array(3), "base_lr": np.array(1.0),
                                        "foo": np.array(1)})
    s = StepLR(opt, 2, gamma=0.5)
    s.load_state_dict({"last_step": np.array(5), "base_lr": np.array(1.0)})
    assert s.last_step == 5 and opt.lr == 0.25


# ------------------------------------------------------------ bad arguments
@pytest.mark.parametrize("call,match", [
    (lambda ps: SGD(ps, lr=-0.1), "invalid learning rate"),
    (lambda ps: SGD(ps, lr=float("nan")), "invalid learning rate"),
    (lambda ps: SGD(ps, lr=0.1, nesterov=True), "nesterov=True requires momentum > 0"),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "dampening == 0"),
    (lambda ps: SGD(ps, lr=0.1, momentum=-0.5), "invalid momentum"),
    (lambda ps: SGD(ps, lr=0.1, weight_decay=-1e-4), "invalid weight_decay"),
    (lambda ps: Adam(ps, lr=-1e-3), "invalid learning rate"),
    (lambda ps: Adam(ps, betas=(1.0, 0.999)), "invalid beta1"),
    (lambda ps: Adam(ps, betas=(0.9, -0.1)), "invalid beta2"),
    (lambda ps: Adam(ps, betas=0.9), "betas must be a pair"),
    (lambda ps: Adam(ps, eps=-1e-8), "invalid eps"),
    (lambda ps: AdamW(ps, weight_decay=-0.1), "invalid weight_decay"),
    (lambda ps: SGD([], lr=0.1), "empty parameter list"),
    (lambda ps: SGD(ps + ps[:1], lr=0.1), "appears more than once"),
])
def test_bad_optimizer_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(make_params())


def test_bad_param_types():
    with pytest.raises(TypeError, match="Parameter"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="single Parameter"):
        SGD(Parameter(np.zeros(3)), lr=0.1)
    with pytest.raises(TypeError, match="floating point"):
        SGD([Parameter(np.zeros(3, dtype=np.int64))], lr=0.1)


@pytest.mark.parametrize("call,match", [
    (lambda o: StepLR(o, 0), "step_size must be a positive integer"),
    (lambda o: StepLR(o, 2.5), "step_size must be a positive integer"),
    (lambda o: CosineAnnealingLR(o, 0), "T_max must be a positive integer"),
    (lambda o: OneCycleLR(o, 0.1, 10, pct_start=1.5), "pct_start"),
    (lambda o: OneCycleLR(o, 0.1, 10, anneal_strategy="exp"), "anneal_strategy"),
    (lambda o: OneCycleLR(o, -0.1, 10), "max_lr"),
    (lambda o: OneCycleLR(o, 0.1, 10, cycle_momentum=True), "cycle_momentum"),
    (lambda o: LinearWarmup(o, 0), "warmup_steps"),
    (lambda o: ConstantLR(o, factor=2.0), "factor"),
])
def test_bad_schedule_arguments(call, match):
    opt = SGD([Parameter(np.zeros(1))], lr=0.1)     # momentum 0: cannot cycle momentum
    with pytest.raises(ValueError, match=match):
        call(opt)


def test_onecycle_refuses_to_step_past_total_steps():
    opt = SGD([Parameter(np.zeros(1))], lr=0.1)
    s = OneCycleLR(opt, 0.1, 3)
    for _ in range(3):
        s.step()
    with pytest.raises(ValueError, match="total_steps is 3"):
        s.step()


# ------------------------------------------------ frozen parameters and lr_scale
@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    lambda ps: Adam(ps, lr=1e-2, weight_decay=1e-2),
    lambda ps: AdamW(ps, lr=1e-2)], ids=["SGD", "Adam", "AdamW"])
def test_frozen_parameters_stay_put_and_checkpoint(make):
    params = make_params()
    params[1].requires_grad = False
    frozen = params[1].data.copy()
    opt = make(params)
    run_steps(opt, params, 0, 3)
    np.testing.assert_array_equal(params[1].data, frozen)
    assert opt.state[1] == {} and all(opt.state[i] for i in (0, 2, 3))
    assert not np.allclose(params[0].data, make_params()[0].data)
    fresh = make(params)
    fresh.load_state_dict(opt.state_dict())  # no state for the frozen one: still complete
    assert fresh.step_count == 3


@pytest.mark.torch
def test_lr_scale_matches_torch_parameter_groups():
    """lr_scale s = a torch parameter group with lr * s and weight_decay / s, through a
    schedule that changes the lr every step."""
    torch = _torch()
    kw = dict(momentum=0.85, nesterov=True)
    params = make_params()
    params[2].lr_scale, params[3].lr_scale = 64.0, 0.5
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = SGD(params, lr=0.3, weight_decay=2e-3, **kw)
    topt = torch.optim.SGD([dict(params=[tp], lr=0.3 * p.lr_scale, weight_decay=2e-3 / p.lr_scale)
                            for p, tp in zip(params, tparams)], foreach=False, **kw)
    sched = OneCycleLR(opt, max_lr=0.3, total_steps=6, pct_start=0.2, div_factor=5.0,
                       anneal_strategy="linear")
    for k in range(6):
        for p, tp, g in zip(params, tparams, grads_for(k)):
            p.grad[...] = g
            tp.grad = torch.from_numpy(g.copy())
        for p, group in zip(params, topt.param_groups):
            group["lr"] = opt.lr * p.lr_scale
        opt.step()
        topt.step()
        sched.step()
        for p, tp in zip(params, tparams):
            abs_err, rel_err = max_err(p.data, tp.detach().numpy())
            assert abs_err <= TOL and rel_err <= TOL, (k, abs_err, rel_err)
    plain = make_params()
    run_steps(SGD(plain, lr=0.3, weight_decay=2e-3, **kw), plain, 0, 1)
    assert max_err(params[2].data, plain[2].data)[0] > 1e-3  # the scale did something


def test_lr_scale_by_hand():
    """One plain SGD step: p - lr * s * (g + wd / s * p) = p - lr * (s g + wd p)."""
    p = Parameter(np.array([1.0, -2.0]))
    p.lr_scale = 10.0
    p.grad[...] = [0.5, 0.25]
    SGD([p], lr=0.1, weight_decay=0.2).step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * (5.0 + 0.2), -2.0 - 0.1 * (2.5 - 0.4)])
