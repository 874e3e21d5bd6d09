"""Module machinery: registration and names, modes, state_dict, dtype casts, gradients, init."""
import copy

import numpy as np
import pytest

import minitorch_cnn
from minitorch_cnn import nn


def net(rng=None, dtype=np.float32):
    rng = np.random.default_rng(0) if rng is None else rng
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, rng=rng, dtype=dtype),
        nn.BatchNorm2d(4, dtype=dtype),
        nn.ReLU(),
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(4, 2, bias=False, rng=rng, dtype=dtype)),
    )


class Block(nn.Module):
    """A hand-written module: a child, then an own parameter, then a buffer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1, bias=False)
        self.scale = nn.Parameter(np.ones(2, dtype=np.float32))
        self.register_buffer("calls", np.array(0, dtype=np.int64))


# ---------------------------------------------------------------- naming
def test_named_parameters_order_and_dotted_names():
    m = net()
    names = [k for k, _ in m.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "3.2.weight"]
    params = m.parameters()
    assert [p is q for p, (_, q) in zip(params, m.named_parameters())] == [True] * 5
    assert params[0] is m[0].weight and params[4] is m[3][2].weight
    assert [p.shape for p in params] == [(4, 3, 3, 3), (4,), (4,), (4,), (2, 4)]


def test_own_parameters_come_before_children_like_pytorch():
    b = Block()
    assert [k for k, _ in b.named_parameters()] == ["scale", "conv.weight"]
    assert list(b.state_dict()) == ["scale", "calls", "conv.weight"]
    assert [k for k, _ in b.named_buffers()] == ["calls"]
    assert [k for k, _ in nn.Sequential(b).named_parameters(prefix="body")] == \
        ["body.0.scale", "body.0.conv.weight"]


def test_reassigning_an_attribute_updates_the_registration():
    conv = nn.Conv2d(2, 3, 1)
    conv.bias = None  # no bias any more: gone from parameters and state_dict
    assert [k for k, _ in conv.named_parameters()] == ["weight"]
    assert list(conv.state_dict()) == ["weight"]
    b = Block()
    b.calls = b.calls + 1  # a buffer assigned a new array stays a buffer
    assert b.state_dict()["calls"] == 1
    b.conv = nn.Identity()
    assert [k for k, _ in b.named_parameters()] == ["scale"]


def test_sequential_container_behaviour():
    m = net()
    assert len(m) == 4 and isinstance(m[1], nn.BatchNorm2d) and isinstance(m[-1], nn.Sequential)
    assert [type(c).__name__ for c in m] == ["Conv2d", "BatchNorm2d", "ReLU", "Sequential"]
    assert [name for name, _ in m.named_children()] == ["0", "1", "2", "3"]
    assert [name for name, _ in m.named_modules()] == ["", "0", "1", "2", "3", "3.0", "3.1", "3.2"]
    text = repr(m)
    assert "(0): Conv2d(3, 4, kernel_size=(3, 3)" in text and "(2): Linear(in_features=4" in text


# ----------------------------------------------------------------- modes
def test_train_and_eval_propagate_to_every_submodule():
    m = net()
    assert all(sub.training for sub in m.modules())
    assert m.eval() is m
    assert not any(sub.training for sub in m.modules())
    assert m.train() is m and all(sub.training for sub in m.modules())
    m.train(False)
    assert not m[3][2].training


def test_eval_mode_changes_batchnorm_behaviour(rng):
    m = net(dtype=np.float64)
    x = rng.standard_normal((4, 5, 5, 3))
    m(x)
    stats = copy.deepcopy(m[1].state_dict())
    m.eval()
    y1, y2 = m(x), m(x[:1])
    np.testing.assert_allclose(y2, y1[:1], rtol=1e-12)  # per-sample in eval: no batch statistics
    for k, v in m[1].state_dict().items():
        np.testing.assert_array_equal(v, stats[k])      # and no updates


# -------------------------------------------------------------- gradients
def test_zero_grad_resets_every_parameter(rng):
    m = net(dtype=np.float64)
    y = m(rng.standard_normal((2, 4, 4, 3)))
    m.backward(np.ones_like(y))
    assert all(p.grad.any() for p in m.parameters())
    grads = [p.grad for p in m.parameters()]
    m.zero_grad()
    assert all(not p.grad.any() for p in m.parameters())
    assert all(g is p.grad for g, p in zip(grads, m.parameters()))  # reset in place


@pytest.mark.parametrize("make, shape", [
    (lambda rng: nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=rng, dtype=np.float64), (2, 5, 5, 2)),
    (lambda rng: nn.Linear(4, 3, rng=rng, dtype=np.float64), (5, 4)),
    (lambda rng: nn.BatchNorm2d(2, dtype=np.float64), (3, 2, 2, 2)),
])
def test_parameter_grads_accumulate_over_two_backward_calls(rng, make, shape):
    layer = make(rng)
    x = rng.standard_normal(shape)
    g = rng.standard_normal(layer(x).shape)
    layer.backward(g)
    once = {k: p.grad.copy() for k, p in layer.named_parameters()}
    assert all(v.any() for v in once.values())
    layer(x)
    layer.backward(g)
    for k, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * once[k], rtol=1e-12, err_msg=k)


# ------------------------------------------------------------- state dict
def test_state_dict_holds_parameters_and_buffers_as_copies():
    m = net()
    sd = m.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                        "1.running_var", "1.num_batches_tracked", "3.2.weight"]
    assert sd["1.num_batches_tracked"].dtype == np.int64 and sd["1.num_batches_tracked"].shape == ()
    np.testing.assert_array_equal(sd["1.running_var"], np.ones(4))
    sd["0.weight"][...] = 123.0
    sd["1.running_mean"][...] = 7.0
    assert not (m[0].weight.data == 123.0).any() and not m[1].running_mean.any()


def test_load_state_dict_round_trip_keeps_parameter_objects(rng):
    src, dst = net(np.random.default_rng(1)), net(np.random.default_rng(2))
    src(rng.standard_normal((2, 4, 4, 3)).astype(np.float32))  # non-trivial running stats
    params_before = dst.parameters()
    data_before = [p.data for p in params_before]
    missing, unexpected = dst.load_state_dict(src.state_dict())
    assert missing == [] and unexpected == []
    for k, v in src.state_dict().items():
        np.testing.assert_array_equal(dst.state_dict()[k], v, err_msg=k)
    # an optimizer holding the old Parameter objects still sees the new values
    assert all(p is q and p.data is d for p, q, d in zip(params_before, dst.parameters(),
                                                         data_before))
    sd = src.state_dict()
    dst.load_state_dict(sd)
    sd["0.weight"][...] = 0  # no aliasing with the dict it was loaded from
    assert dst[0].weight.data.any()


def _assert_unchanged(module, snapshot):
    for k, v in module.state_dict().items():
        np.testing.assert_array_equal(v, snapshot[k], err_msg=k)


def test_load_state_dict_missing_keys_loads_nothing():
    m = net()
    before = m.state_dict()
    sd = net(np.random.default_rng(9)).state_dict()
    del sd["0.bias"], sd["1.num_batches_tracked"]
    with pytest.raises(ValueError, match=r"Sequential\.load_state_dict: nothing was loaded; "
                                         r"missing keys \(2\): 0\.bias, 1\.num_batches_tracked"):
        m.load_state_dict(sd)
    _assert_unchanged(m, before)  # 0.weight etc. were fine but are not half-loaded
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert missing == ["0.bias", "1.num_batches_tracked"] and unexpected == []
    np.testing.assert_array_equal(m[0].weight.data, sd["0.weight"])
    np.testing.assert_array_equal(m[0].bias.data, before["0.bias"])


def test_load_state_dict_unexpected_keys_loads_nothing():
    m = net()
    before = m.state_dict()
    sd = net(np.random.default_rng(9)).state_dict()
    sd["3.2.bias"] = np.zeros(2, dtype=np.float32)
    sd["extra"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected keys \(2\): 3\.2\.bias, extra"):
        m.load_state_dict(sd)
    _assert_unchanged(m, before)
    assert m.load_state_dict(sd, strict=False) == ([], ["3.2.bias", "extra"])


def test_load_state_dict_misshaped_keys_loads_nothing_even_when_not_strict():
    m = net()
    before = m.state_dict()
    sd = net(np.random.default_rng(9)).state_dict()
    sd["0.weight"] = np.zeros((4, 3, 2, 2), dtype=np.float32)
    sd["1.running_var"] = np.ones(5, dtype=np.float32)
    for strict in (True, False):
        with pytest.raises(ValueError, match=r"mis-shaped keys \(2\): 0\.weight: expected "
                                             r"\(4, 3, 3, 3\), got \(4, 3, 2, 2\); 1\.running_var: "
                                             r"expected \(4,\), got \(5,\)"):
            m.load_state_dict(sd, strict=strict)
        _assert_unchanged(m, before)


def test_load_state_dict_lists_every_kind_of_problem_at_once():
    m = net()
    sd = m.state_dict()
    del sd["0.bias"]
    sd["zzz"] = np.zeros(1)
    sd["3.2.weight"] = np.zeros((4, 2))
    with pytest.raises(ValueError) as info:
        m.load_state_dict(sd)
    message = str(info.value)
    assert "missing keys (1): 0.bias" in message and "unexpected keys (1): zzz" in message
    assert "3.2.weight: expected (2, 4), got (4, 2)" in message


def test_load_state_dict_casts_to_each_target_dtype():
    m = net()
    sd = {k: v.astype(np.float64) for k, v in net(np.random.default_rng(3)).state_dict().items()}
    sd["1.num_batches_tracked"] = np.array(5.0)
    m.load_state_dict(sd)
    assert m[0].weight.dtype == np.float32 and m[1].running_mean.dtype == np.float32
    assert m[1].num_batches_tracked.dtype == np.int64 and m[1].num_batches_tracked == 5


# ------------------------------------------------------------------ dtype
def test_to_float64_casts_params_grads_and_float_buffers_only(rng):
    m = net()
    y = m(rng.standard_normal((2, 4, 4, 3)).astype(np.float32))
    m.backward(np.ones_like(y))
    before = m.state_dict()
    grads = [p.grad.copy() for p in m.parameters()]
    assert m.to(np.float64) is m
    for p, g in zip(m.parameters(), grads):
        assert p.data.dtype == np.float64 and p.grad.dtype == np.float64
        np.testing.assert_array_equal(p.grad, g)
    assert m[1].running_mean.dtype == np.float64 and m[1].running_var.dtype == np.float64
    assert m[1].num_batches_tracked.dtype == np.int64 and m[1].num_batches_tracked == 1
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # same values
    assert m(rng.standard_normal((1, 4, 4, 3))).dtype == np.float64
    m.to("float32")
    assert all(p.dtype == np.float32 for p in m.parameters())


# ------------------------------------------------------------------- init
@pytest.mark.parametrize("make, fan_in", [
    (lambda rng: nn.Conv2d(6, 32, (3, 5), rng=rng), 6 * 3 * 5),
    (lambda rng: nn.Conv2d(64, 64, 1, rng=rng), 64),
    (lambda rng: nn.Linear(50, 200, rng=rng), 50),
])
def test_init_is_uniform_within_one_over_sqrt_fan_in(make, fan_in):
    layer = make(np.random.default_rng(0))
    bound = 1 / np.sqrt(fan_in)
    for name, p in layer.named_parameters():
        assert p.dtype == np.float32, name
        assert np.abs(p.data).max() <= bound, name
    w = layer.weight.data.astype(np.float64)
    assert np.abs(w).max() > 0.98 * bound  # the bound is reached, not a narrower one
    assert w.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)  # uniform, not normal
    assert abs(w.mean()) < 0.05 * bound
    assert np.abs(layer.bias.data).max() > 0.5 * bound  # the bias uses the same bound


def test_batchnorm_init():
    bn = nn.BatchNorm2d(3)
    for name, value in [("weight", 1), ("bias", 0), ("running_mean", 0), ("running_var", 1)]:
        np.testing.assert_array_equal(bn.state_dict()[name], np.full(3, value), err_msg=name)
    assert bn.num_batches_tracked == 0 and bn.momentum == 0.1 and bn.eps == 1e-5


def test_init_reproducible_with_rng_and_manual_seed():
    a = nn.Conv2d(3, 4, 3, rng=np.random.default_rng(5))
    b = nn.Conv2d(3, 4, 3, rng=np.random.default_rng(5))
    c = nn.Conv2d(3, 4, 3, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, c.weight.data)
    nn.manual_seed(11)
    first = _unseeded_net().state_dict()
    minitorch_cnn.manual_seed(11)  # the same function, exported at the top level
    second = _unseeded_net().state_dict()
    third = _unseeded_net().state_dict()  # the generator moved on
    for k in first:
        np.testing.assert_array_equal(first[k], second[k], err_msg=k)
    assert not np.array_equal(second["0.weight"], third["0.weight"])


def _unseeded_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))


def test_deepcopy_is_independent(rng):
    m = net(dtype=np.float64)
    twin = copy.deepcopy(m)
    twin[0].weight.data[...] = 0
    twin(rng.standard_normal((2, 4, 4, 3)))
    assert m[0].weight.data.any() and m[1].num_batches_tracked == 0
