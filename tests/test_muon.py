"""Tests of optim.Muon, newton_schulz, muon_param_groups and Combined.

The oracle for the update is a PyTorch transcription of airbench94_muon's
optimizer, written below in float64 (the original computes in bfloat16); it
skips when torch is absent. The other tests need only numpy: the
Newton--Schulz map measured on singular values, a rank-1 gradient whose
update is known in closed form, state dicts and bad input.
"""
import tracemalloc

import numpy as np
import pytest

from minitorch_cnn import models
from minitorch_cnn.nn.module import Parameter
from minitorch_cnn.optim import (SGD, Combined, Muon, TriangleLR, muon_param_groups,
                                 newton_schulz)
from minitorch_cnn.optim.muon import NS_COEFFICIENTS
from test_recipe import assert_resumes_exactly

AIRBENCH_COEFFICIENTS = (3.4445, -4.7750, 2.0315)   # airbench94_muon.py's (a, b, c)


def quintic(s):
    """p(s) = a s + b s^3 + c s^5, what one Newton--Schulz step does to a singular value."""
    a, b, c = AIRBENCH_COEFFICIENTS
    return a * s + b * s ** 3 + c * s ** 5


def band(steps=3, smallest=0.02):
    """(lo, hi): where ``steps`` iterations of p send every s in [smallest, 1], found on a
    fine grid. With airbench's coefficients: about [0.682, 1.202]."""
    s = np.linspace(smallest, 1.0, 200001)
    for _ in range(steps):
        s = quintic(s)
    return s.min(), s.max()


def _matrix_with_singular_values(rng, m, n, sv):
    """U diag(sv) V^T with random orthonormal U (m, k), V (n, k)."""
    k = len(sv)
    u, _ = np.linalg.qr(rng.standard_normal((m, k)))
    v, _ = np.linalg.qr(rng.standard_normal((n, k)))
    return (u * sv) @ v.T, u, v


# ---------------------------------------------------------------- Newton--Schulz alone
def test_band_derived_from_the_polynomial():
    """p(1) = a + b + c = 0.701, the slope at 0 is a = 3.4445, p's maximum on [0, 1] is
    1.2024 (at s = 0.5545) and [0.682, 1.202] is mapped into itself."""
    lo, hi = band()
    assert lo == pytest.approx(0.6818, abs=1e-4) and hi == pytest.approx(1.2024, abs=1e-4)
    s = np.linspace(lo, hi, 100001)
    assert quintic(s).min() >= lo - 1e-9 and quintic(s).max() <= hi + 1e-9
    assert sum(AIRBENCH_COEFFICIENTS) == pytest.approx(0.701)
    assert NS_COEFFICIENTS == AIRBENCH_COEFFICIENTS


@pytest.mark.parametrize("shape", [(7, 30), (30, 7), (12, 12)])
def test_newton_schulz_acts_on_singular_values_only(rng, shape):
    """NS(G) = U p(p(p(S / |G|_F))) V^T: the singular vectors stay, each singular value
    goes through the quintic three times -- wide, tall and square matrices alike."""
    m, n = shape
    k = min(m, n)
    sv = rng.uniform(0.05, 3.0, size=k)
    g, u, v = _matrix_with_singular_values(rng, m, n, sv)
    out = newton_schulz(g, steps=3, eps=0.0)
    expected = sv / np.linalg.norm(g)
    for _ in range(3):
        expected = quintic(expected)
    np.testing.assert_allclose(out, (u * expected) @ v.T, rtol=0, atol=1e-12)


def test_singular_values_land_in_the_band(rng):
    """Gradient-shaped random matrices (a filter of airbench's block 2, 256 x 576, and a
    tall one), measured by an SVD: the output's singular values lie in the band the
    polynomial predicts from the input's smallest one (about [0.68, 1.20] when that is
    >= 2 % of the norm) -- not 1: airbench's "roughly 0.5-1.5" made exact."""
    for shape in [(256, 576), (576, 64)]:
        g = rng.standard_normal(shape) * rng.uniform(0.5, 2.0, size=(1, shape[1]))
        s_in = np.linalg.svd(g / np.linalg.norm(g), compute_uv=False)
        lo, hi = band(smallest=s_in.min())
        assert 0.5 < lo and hi < 1.21
        s_out = np.linalg.svd(newton_schulz(g), compute_uv=False)
        assert lo - 1e-9 <= s_out.min() and s_out.max() <= hi + 1e-9
        assert s_out.max() - s_out.min() > 0.1      # a band, not exactly orthogonal


def test_small_singular_values_stay_small(rng):
    """Below the band's premise the map is about a^3 s: a direction with 0.1 % of the norm
    comes out near 0.041, far from 1 (three steps are not enough to lift it)."""
    sv = np.array([1.0, 0.5, 0.001 * np.sqrt(1.25)])
    g, _, _ = _matrix_with_singular_values(rng, 5, 9, sv)
    s_out = np.linalg.svd(newton_schulz(g, eps=0.0), compute_uv=False)[:3]
    s = sv / np.linalg.norm(g)
    for _ in range(3):
        s = quintic(s)
    np.testing.assert_allclose(s_out, np.sort(s)[::-1], rtol=1e-10)
    assert s_out[-1] == pytest.approx(0.0409, abs=1e-4)


def test_tall_matrix_uses_the_small_gram_matrix(rng):
    """A (4000, 3) gradient is orthogonalised through a 3 x 3 Gram matrix, not a
    4000 x 4000 one (128 MB in float64): the peak of the step's allocations stays small."""
    g = rng.standard_normal((4000, 3))
    tracemalloc.start()
    try:
        newton_schulz(g)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 4000 * 3 * 8 * 4    # a few copies of g, nothing quadratic


def test_newton_schulz_keeps_float32(rng):
    g = rng.standard_normal((8, 20)).astype(np.float32)
    assert newton_schulz(g).dtype == np.float32


# ---------------------------------------------------------------- rank-1 property
@pytest.mark.parametrize("nesterov", [True, False])
def test_rank_one_gradient_gives_the_known_step(rng, nesterov):
    """For a rank-1 gradient u v^T the normalised matrix has one singular value, 1, so the
    update is exactly p(p(p(1))) (u v^T) / (|u| |v|) = 0.7207 u_hat v_hat^T, whatever the
    gradient's size; momentum keeps a rank-1 gradient rank-1 on the first step. The filter
    is first rescaled to norm sqrt(out)."""
    out_c, in_c = 6, 4
    u, v = rng.standard_normal(out_c), rng.standard_normal(in_c * 3 * 3)
    w0 = rng.standard_normal((out_c, in_c, 3, 3)) * 3.0
    p = Parameter(w0.copy())
    p.grad = (1e3 * np.outer(u, v)).reshape(w0.shape)
    lr = 0.3
    Muon([p], lr=lr, momentum=0.6, nesterov=nesterov, eps=1e-30).step()
    direction = np.outer(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
    scale = quintic(quintic(quintic(1.0)))
    assert scale == pytest.approx(0.72071, abs=1e-5)
    expected = w0 * np.sqrt(out_c) / np.linalg.norm(w0) - lr * scale * direction.reshape(w0.shape)
    np.testing.assert_allclose(p.data, expected, rtol=0, atol=1e-12)
    step = p.data - w0 * np.sqrt(out_c) / np.linalg.norm(w0)
    sv = np.linalg.svd(step.reshape(out_c, -1), compute_uv=False)   # one singular value
    assert sv[0] == pytest.approx(lr * scale) and sv[1] < 1e-12


# ---------------------------------------------------------------- PyTorch oracle
def _torch_reference(torch):
    """airbench94_muon's Muon, transcribed in PyTorch: float64 instead of bfloat16, and
    ``lr_scale`` as a per-parameter factor (what a parameter group would do)."""
    def orthogonalise(G, steps, eps):
        a, b, c = AIRBENCH_COEFFICIENTS
        X = G.clone()
        X /= (X.norm() + eps)
        if G.size(0) > G.size(1):
            X = X.T
        for _ in range(steps):
            A = X @ X.T
            B = b * A + c * A @ A
            X = a * X + B @ X
        if G.size(0) > G.size(1):
            X = X.T
        return X

    def step(params, bufs, lr, momentum, nesterov, steps, eps, scales):
        for p, buf, s in zip(params, bufs, scales):
            g = p.grad
            if g is None:
                continue
            buf.mul_(momentum).add_(g)
            g = g.add(buf, alpha=momentum) if nesterov else buf
            p.data.mul_(len(p.data) ** 0.5 / p.data.norm())
            update = orthogonalise(g.reshape(len(g), -1), steps, eps).view(g.shape)
            p.data.add_(update, alpha=-lr * s)
    return step


@pytest.mark.torch
@pytest.mark.parametrize("nesterov,momentum,ns_steps", [(True, 0.6, 3), (False, 0.9, 5),
                                                        (True, 0.95, 1)])
def test_matches_airbench_muon_in_torch_float64(torch, rng, nesterov, momentum, ns_steps):
    """Several steps from a random state: filters of several shapes (tall, wide, square;
    a 2-D weight too), random weights of random norms, random momentum buffers loaded
    through the state dict, a new random gradient and learning rate every step, an
    lr_scale, one parameter frozen and one with no gradient on some steps."""
    shapes = [(64, 24, 3, 3), (5, 7, 3, 3), (40, 2, 1, 1), (10, 10, 1, 1), (9, 13)]
    params = [Parameter(rng.standard_normal(s) * rng.uniform(0.1, 5.0)) for s in shapes]
    params[2].lr_scale = 0.37
    frozen = Parameter(rng.standard_normal((4, 4, 3, 3)))
    frozen.requires_grad = False
    opt = Muon(params + [frozen], lr=0.1, momentum=momentum, nesterov=nesterov,
               ns_steps=ns_steps, eps=1e-7)
    bufs0 = [rng.standard_normal(s) for s in shapes]
    sd = opt.state_dict()
    sd["step"] = np.array(3)
    sd["no_state"] = np.array([5])
    for i, b in enumerate(bufs0):
        sd[f"state.{i}.momentum_buffer"] = b
    opt.load_state_dict(sd)

    t_params = [torch.tensor(p.data.copy()) for p in params]
    t_bufs = [torch.tensor(b.copy()) for b in bufs0]
    reference = _torch_reference(torch)
    frozen0 = frozen.data.copy()
    for k in range(6):
        lr = rng.uniform(0.01, 0.3)
        opt.lr = lr
        for i, (p, tp) in enumerate(zip(params, t_params)):
            if i == 1 and k % 2 == 1:
                p.grad, tp.grad = None, None
            else:
                g = rng.standard_normal(p.data.shape) * 10.0 ** rng.uniform(-3, 2)
                p.grad, tp.grad = g, torch.tensor(g.copy())
        frozen.grad = rng.standard_normal(frozen.data.shape)
        opt.step()
        reference(t_params, t_bufs, lr, momentum, nesterov, ns_steps, 1e-7,
                  [p.lr_scale for p in params])
        for i, (p, tp, tb) in enumerate(zip(params, t_params, t_bufs)):
            np.testing.assert_allclose(p.data, tp.numpy(), rtol=0, atol=1e-12,
                                       err_msg=f"param {i}, step {k}")
            np.testing.assert_allclose(opt.state[i]["momentum_buffer"], tb.numpy(), rtol=1e-13,
                                       atol=1e-12, err_msg=f"buffer {i}, step {k}")
    np.testing.assert_array_equal(frozen.data, frozen0)
    assert opt.step_count == 3 + 6


def test_weights_keep_their_norm_before_each_step(rng):
    """With lr = 0 the step only rescales each filter to Frobenius norm sqrt(out)."""
    p = Parameter(rng.standard_normal((16, 3, 3, 3)) * 7.0)
    p.grad = rng.standard_normal(p.data.shape)
    Muon([p], lr=0.0).step()
    assert np.linalg.norm(p.data) == pytest.approx(4.0, rel=1e-12)
    q = Parameter(rng.standard_normal((16, 3, 3, 3)) * 7.0)
    q0 = q.data.copy()
    q.grad = rng.standard_normal(q.data.shape)
    Muon([q], lr=0.0, normalize=False).step()
    np.testing.assert_array_equal(q.data, q0)


def test_float32_stays_float32(rng):
    p = Parameter(rng.standard_normal((8, 4, 3, 3)).astype(np.float32))
    p.grad = rng.standard_normal(p.data.shape).astype(np.float32)
    opt = Muon([p], lr=0.1)
    opt.step()
    assert p.data.dtype == np.float32 and opt.state[0]["momentum_buffer"].dtype == np.float32


# ---------------------------------------------------------------- state dicts
def _run(opt, params, grads):
    for g in grads:
        for p, gi in zip(params, g):
            p.grad = gi.copy()
        opt.step()


def test_state_dict_round_trip_is_bit_identical(tmp_path, rng):
    shapes = [(8, 4, 3, 3), (3, 11)]
    w0 = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(6)]
    a = [Parameter(w.copy()) for w in w0]
    opt_a = Muon(a, lr=0.05, momentum=0.8, nesterov=False, ns_steps=4)
    _run(opt_a, a, grads[:3])
    np.savez(tmp_path / "opt.npz", **opt_a.state_dict())
    b = [Parameter(p.data.copy()) for p in a]
    opt_b = Muon(b, lr=1.0)                    # the checkpoint's settings replace these
    opt_b.load_state_dict(dict(np.load(tmp_path / "opt.npz")))
    assert (opt_b.lr, opt_b.momentum, opt_b.nesterov, opt_b.ns_steps) == (0.05, 0.8, False, 4)
    _run(opt_a, a, grads[3:])
    _run(opt_b, b, grads[3:])
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa.data, pb.data)
    assert sorted(opt_a.state_dict()) == sorted(
        ["lr", "step", "num_params", "momentum", "nesterov", "ns_steps", "eps", "normalize",
         "state.0.momentum_buffer", "state.1.momentum_buffer"])


def test_load_state_dict_rejects_bad_dicts_and_loads_nothing(rng):
    p = Parameter(rng.standard_normal((4, 2, 3, 3)))
    p.grad = rng.standard_normal(p.data.shape)
    opt = Muon([p], lr=0.1)
    opt.step()
    good = opt.state_dict()
    for bad, match in [({**good, "state.0.momentum_buffer": np.zeros((4, 18))}, "mis-shaped"),
                       ({**good, "ns_steps": np.array(0)}, "ns_steps"),
                       ({k: v for k, v in good.items() if k != "state.0.momentum_buffer"},
                        "state arrays are missing")]:
        with pytest.raises(ValueError, match=match):
            opt.load_state_dict(bad)
    np.testing.assert_array_equal(opt.state_dict()["state.0.momentum_buffer"],
                                  good["state.0.momentum_buffer"])
    assert opt.ns_steps == 3


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw,match", [
    (dict(lr=-1.0), "invalid learning rate"),
    (dict(lr=0.1, momentum=-0.5), "invalid momentum"),
    (dict(lr=0.1, momentum=0.0, nesterov=True), "nesterov=True requires momentum > 0"),
    (dict(lr=0.1, ns_steps=0), "ns_steps must be an integer >= 1, got 0"),
    (dict(lr=0.1, ns_steps=2.5), "ns_steps must be an integer"),
    (dict(lr=0.1, eps=0.0), "invalid eps"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        Muon([Parameter(np.zeros((2, 3)))], **kw)


def test_one_dimensional_parameters_are_refused_with_advice():
    with pytest.raises(ValueError, match=r"params\[1\] has shape \(5,\).*give biases and "
                                         r"BatchNorm parameters to SGD"):
        Muon([Parameter(np.ones((2, 3))), Parameter(np.zeros(5))], lr=0.1)
    with pytest.raises(TypeError, match="expected a Parameter"):
        Muon([np.zeros((2, 3))], lr=0.1)


# ---------------------------------------------------------------- groups and Combined
def test_muon_param_groups_split_like_airbench():
    """airbench94's net: Muon gets the six 3x3 filters (not the frozen whitening filter),
    SGD the rest: the whitening bias, BatchNorm parameters (weights frozen) and the head."""
    model = models.get_model("airbench94", rng=np.random.default_rng(0))
    filters, rest = muon_param_groups(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert [names[id(p)] for p in filters] == [
        f"block{b}.{i}.weight" for b in (1, 2, 3) for i in (0, 4)]
    rest_names = {names[id(p)] for p in rest}
    assert {"stem.0.weight", "stem.0.bias", "fc.weight", "block1.2.bias"} <= rest_names
    assert len(filters) + len(rest) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="needs some of each"):
        muon_param_groups(models.get_model("airbench94").fc)


def test_airbench94_muon_network_differs_from_airbench94_only_in_its_head_and_bias():
    """airbench94_muon.py's CifarNet: airbench94's layers and keys, logits / 256 instead of
    / 9, head weights rescaled to (unbiased) std 1, the whitening bias left where PyTorch's
    initialisation draws it, U(-1/sqrt(12), 1/sqrt(12)), instead of zeroed."""
    muon = models.get_model("airbench94_muon", rng=np.random.default_rng(0))
    plain = models.get_model("airbench94", rng=np.random.default_rng(0))
    assert list(muon.state_dict()) == list(plain.state_dict())
    assert (muon.logit_scale, plain.logit_scale) == (1 / 256, 1 / 9)
    assert np.std(muon.fc.weight.data, ddof=1) == pytest.approx(1.0, rel=1e-6)
    bias = muon.stem[0].bias.data
    assert np.all(np.abs(bias) <= 1 / np.sqrt(12)) and np.abs(bias).max() > 0.1
    assert not np.any(plain.stem[0].bias.data)
    for name, p in plain.named_parameters():
        if name not in ("fc.weight", "stem.0.bias"):
            assert dict(muon.named_parameters())[name].requires_grad == p.requires_grad


def _combined(rng):
    w = Parameter(rng.standard_normal((6, 3, 3, 3)))
    b = Parameter(rng.standard_normal(6))
    opt = Combined(sgd=SGD([b], lr=2.0, momentum=0.85, nesterov=True, weight_decay=1e-3),
                   muon=Muon([w], lr=0.24))
    return opt, [w, b]


def test_combined_one_schedule_scales_every_member(rng):
    opt, _ = _combined(rng)
    sched = TriangleLR(opt, total_steps=10, start=1.0, peak=0.0, end=0.0)
    for _ in range(4):
        sched.step()
    assert opt.lr == pytest.approx(2.0 * 0.6)
    assert opt.members["muon"].lr == pytest.approx(0.24 * 0.6)
    assert len(opt.params) == 2 and opt.state_names == ("momentum_buffer",)


def test_combined_steps_members_and_round_trips(rng, tmp_path):
    opt, params = _combined(rng)
    grads = [[rng.standard_normal(p.data.shape) for p in params] for _ in range(5)]
    _run(opt, params, grads[:2])
    np.savez(tmp_path / "c.npz", **opt.state_dict())
    assert "muon.state.0.momentum_buffer" in opt.state_dict() and "sgd.lr" in opt.state_dict()
    opt2, params2 = _combined(np.random.default_rng(7))
    for p, q in zip(params, params2):
        q.data[...] = p.data
    opt2.load_state_dict(dict(np.load(tmp_path / "c.npz")))
    _run(opt, params, grads[2:])
    _run(opt2, params2, grads[2:])
    for p, q in zip(params, params2):
        np.testing.assert_array_equal(p.data, q.data)


def test_combined_failed_load_changes_nothing(rng):
    opt, params = _combined(rng)
    _run(opt, params, [[rng.standard_normal(p.data.shape) for p in params]])
    good = opt.state_dict()
    bad = {**good, "muon.state.0.momentum_buffer": np.zeros((6, 27)), "sgd.lr": np.array(9.0)}
    with pytest.raises(ValueError, match="nothing was loaded.*mis-shaped"):
        opt.load_state_dict(bad)
    assert opt.members["sgd"].lr == 2.0         # sgd's part was valid, loaded, then undone
    with pytest.raises(ValueError, match="keys of no member"):
        opt.load_state_dict({**good, "adam.lr": np.array(1.0)})


def test_combined_refuses_shared_parameters_and_zero_first_lr(rng):
    w = Parameter(rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match="both a and b"):
        Combined(a=SGD([w], lr=1.0), b=Muon([w], lr=1.0))
    with pytest.raises(ValueError, match="its lr must be > 0"):
        Combined(a=SGD([Parameter(np.zeros(2))], lr=0.0), b=Muon([w], lr=1.0))
    with pytest.raises(TypeError, match="must be an optimizer"):
        Combined(a=object())


# ---------------------------------------------------------------- the preset
def test_preset_is_airbench94_muon():
    """airbench94_muon's numbers (summed loss, batch B = 2000) in mean-loss terms."""
    from minitorch_cnn.training import PRESETS, TrainConfig
    cfg = TrainConfig(**PRESETS["cifar10-muon"])
    batch, head_lr, bias_lr, wd = 2000, 0.67, 0.053, 2e-6 * 2000
    assert (cfg.model, cfg.batch_size, cfg.epochs, cfg.optimizer) == (
        "airbench94_muon", batch, 8, "muon")
    assert cfg.lr == pytest.approx(head_lr * batch)                 # SGD: x batch
    assert cfg.lr * cfg.weight_decay == pytest.approx(wd)           # decay per step kept
    assert cfg.lr * cfg.bn_bias_lr_scale == pytest.approx(bias_lr * batch)
    assert (cfg.muon_lr, cfg.muon_momentum, cfg.momentum, cfg.nesterov) == (0.24, 0.6, 0.85,
                                                                           True)
    assert (cfg.schedule, cfg.pct_start, cfg.end_factor) == ("triangle", 0.0, 0.0)
    assert (cfg.whiten_bias_epochs, cfg.whiten_bias_schedule, cfg.lookahead) == (3, "linear",
                                                                                 False)
    assert (cfg.label_smoothing, cfg.flip, cfg.crop_padding, cfg.crop_padding_mode) == (
        0.2, "alternate", 2, "reflect")
    assert (cfg.tta, cfg.tta_level) == (True, 2)


def test_seed_preset_is_run_7s_command():
    """--preset cifar10-seed-muon is the command of docs/results.md's Run 7 (--preset cifar10
    with Muon, batch 500, rates falling linearly from step 0), and nothing else changed."""
    from minitorch_cnn.cli import _given_settings, build_parser
    from minitorch_cnn.training import PRESETS, TrainConfig
    run7 = ["train", "--preset", "cifar10", "--optimizer", "muon", "--muon-lr", "0.06",
            "--muon-momentum", "0.8", "--batch-size", "500", "--lr", "0.3", "--schedule",
            "triangle", "--pct-start", "0", "--div-factor", "1", "--end-factor", "0",
            "--epochs", "15"]
    preset = _given_settings(build_parser().parse_args(["train", "--preset",
                                                        "cifar10-seed-muon"]))
    assert TrainConfig(**preset) == TrainConfig(**_given_settings(
        build_parser().parse_args(run7)))
    seed, muon = TrainConfig(**PRESETS["cifar10"]), TrainConfig(**preset)
    changed = {k for k in vars(seed) if getattr(seed, k) != getattr(muon, k)}
    assert changed == {"optimizer", "muon_lr", "muon_momentum", "batch_size", "lr", "schedule",
                       "pct_start", "div_factor", "end_factor", "epochs"}
    assert muon.model == "resnet50_layer4" and not muon.tta


def test_seed_preset_puts_the_53_filters_on_muon(tmp_path):
    """The seed model under the preset: Muon on every convolution filter (53), SGD on the rest."""
    from minitorch_cnn.training import PRESETS, Trainer, TrainConfig
    cfg = TrainConfig(**{**PRESETS["cifar10-seed-muon"], "data": "synthetic",
                         "synthetic_size": 24, "val_split": 8, "batch_size": 8, "epochs": 1,
                         "out": str(tmp_path), "progress": False, "max_steps": 1})
    opt = Trainer(cfg, log=lambda *a: None).optimizer
    muon = opt.members["muon"]
    assert len(muon.params) == 53 and all(p.data.ndim == 4 for p in muon.params)
    assert (muon.lr, muon.momentum) == (0.06, 0.8)
    assert all(p.data.ndim < 4 for p in opt.members["sgd"].params)


def _muon_run(tmp_path, **kw):
    from minitorch_cnn.training import PRESETS, TrainConfig
    cfg = {**PRESETS["cifar10-muon"], "data": "synthetic", "synthetic_size": 48,
           "val_split": 8, "batch_size": 8, "epochs": 2, "whiten_bias_epochs": 1,
           "out": str(tmp_path), "progress": False, "eval_batch_size": 8, "tta": False,
           "log_every": 100, **kw}
    return TrainConfig(**cfg)


def _small_net(seed=0):
    """airbench94_muon's network at widths 8, 16, 16: the recipe's tests at a tenth of the cost."""
    return models.FastNet(10, widths=(8, 16, 16), whiten=True, dirac=True, freeze_bn_weight=True,
                          logit_scale=1 / 16, activation="gelu", bn_eps=1e-12, bn_momentum=0.4,
                          fc_bias=False, rng=np.random.default_rng(seed))


def test_preset_builds_and_takes_two_steps(tmp_path):
    """The preset as it is (its network, airbench94_muon) on synthetic images, batch 8: Muon
    on the six filters with eps 1e-7 / 8, SGD on the rest, the whitening bias on an SGD of its
    own at the BatchNorm biases' rate; two steps, finite losses, the filters' norms reset."""
    from minitorch_cnn.training import Trainer
    tr = Trainer(_muon_run(tmp_path, max_steps=2), log=lambda *a: None)
    opt = tr.optimizer
    assert list(opt.members) == ["sgd", "muon", "whiten"]
    muon, whiten = opt.members["muon"], opt.members["whiten"]
    assert len(muon.params) == 6 and muon.eps == pytest.approx(1e-7 / 8)
    assert (muon.lr, muon.momentum, muon.nesterov) == (0.24, 0.6, True)
    assert whiten.params == [tr.model.stem[0].bias]
    assert tr.model.stem[0].bias.lr_scale == pytest.approx(0.053 / 0.67)
    assert np.std(tr.model.fc.weight.data, ddof=1) == pytest.approx(1.0)
    tr.fit()
    losses = tr.history["step_loss"]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert opt.lr == pytest.approx(1340 * (1 - 2 / 10))
    for p in muon.params:        # normalised to sqrt(out) before the last step, then moved
        assert np.linalg.norm(p.data) == pytest.approx(np.sqrt(len(p.data)), rel=0.1)


def test_recipe_schedules_and_resumes(tmp_path):
    """The recipe on a small network, 5 steps per epoch, 10 in all, the whitening bias learning
    in epoch 1: its rate falls to 0 at step 5 while the others' fall to 0 at step 10; a run
    interrupted at step 3 resumes bit for bit."""
    from minitorch_cnn.training import Trainer
    seen = []
    tr = Trainer(_muon_run(tmp_path / "a"), log=lambda *a: None, model=_small_net())
    opt = tr.optimizer
    muon, whiten = opt.members["muon"], opt.members["whiten"]
    assert tr.total_steps == 10
    lrs = [(opt.lr, muon.lr, whiten.lr)]
    tr.fit(on_step=lambda t: (lrs.append((opt.lr, muon.lr, whiten.lr)),
                              seen.append(t.model.stem[0].bias.requires_grad)))
    for k, (sgd_lr, muon_lr, whiten_lr) in enumerate(lrs[:10]):     # the rates of step k
        assert sgd_lr == pytest.approx(1340 * (1 - k / 10))
        assert muon_lr == pytest.approx(0.24 * (1 - k / 10))
        assert whiten_lr == pytest.approx(1340 * max(0.0, 1 - k / 5))
    assert seen == [True] * 5 + [False] * 5
    losses = tr.history["step_loss"]
    assert len(losses) == 10 and all(np.isfinite(losses))

    assert_resumes_exactly(tr, lambda **kw: _muon_run(tmp_path / "b", **kw), _small_net,
                           stop_at=(0, 3))


def test_whiten_bias_schedule_needs_its_epochs_and_sgd(tmp_path):
    from minitorch_cnn.training import Trainer
    with pytest.raises(ValueError, match="needs --whiten-bias-epochs N > 0"):
        Trainer(_muon_run(tmp_path, whiten_bias_epochs=0), log=lambda *a: None)
    with pytest.raises(ValueError, match="needs --optimizer sgd or muon"):
        Trainer(_muon_run(tmp_path, optimizer="adam"), log=lambda *a: None)
