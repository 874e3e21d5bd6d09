"""The fast path (minitorch_cnn.compile) equals the teaching path, for every model of the zoo.

Both paths run on the *same* model (the same Parameters and buffers): the
teaching forward/backward, then, from the same state, the compiled one.
Forward, loss, input gradient, every learnable parameter's gradient and
BatchNorm's running statistics must agree, over several steps in train and
eval mode, in float64 (1e-10), and in float32 as far as float32 rounding
alone moves the plain path (``float32_bound``). Errors are relative to
the tensor's largest value, with a floor at 1e-9 of the model's largest
gradient: a convolution bias just before a BatchNorm has a gradient that is
zero in exact arithmetic (BatchNorm removes the mean), rounding noise on
both paths. These start from each model's initialisation;
tests/test_fast_random_states.py starts from random states.
"""
import copy

import numpy as np
import pytest

import minitorch_cnn
from minitorch_cnn import models, nn, optim
from minitorch_cnn.fast.conv import FastConv2d
from minitorch_cnn.fast.im2col import Im2colGemm
from minitorch_cnn.fast.layers import FastBatchNorm2d, FastReLU
from minitorch_cnn.summary import summary

# ImageNet ResNets at 64x64 (their 1x1 last map would leave BatchNorm 4 values a channel at
# 32x32, badly conditioned); the big ones with one step per mode to keep the suite quick.
SHAPES = {name: (64, 64, 3) if info.input_shape[0] == 224 else info.input_shape
          for name, info in models.MODELS.items()}
HEAVY = {"resnet101", "resnet152", "resnet110", "resnet56"}


def rel(a, b, floor=0.0, norm=np.inf):
    """|a - b| / max(|b|, floor), in the max norm (or another ``norm``, for vectors)."""
    a, b = np.ravel(a), np.ravel(b)
    return float(np.linalg.norm(a - b, norm) / max(np.linalg.norm(b, norm), floor, 1e-300))


def one_step(run, model, x, targets, state, order=None):
    """Load ``state``, run forward, loss, backward; return every result and the new state.
    ``order``: run the batch in this order (a permutation), results put back in the original
    one: the same maths, other float rounding (BatchNorm's and the GEMMs' sums over it)."""
    model.load_state_dict(state)
    order = np.arange(len(x)) if order is None else order
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    logits = run(x[order])
    loss = criterion(logits, targets[order])
    model.zero_grad()
    dx = run.backward(criterion.backward())
    back = np.argsort(order)
    logits, dx = logits[back], dx[back]
    grads = {f"grad {k}": p.grad.copy() for k, p in model.named_parameters() if p.requires_grad}
    return {"logits": logits, "loss": np.array(loss), "input": dx, **grads,
            **{k: v for k, v in model.state_dict().items() if v.dtype.kind == "f"}}


def errors_against(results, reference, floor_of_grads, norm=np.inf):
    return {k: rel(results[k].astype(np.float64), v, floor_of_grads if v.ndim and k not in
                   ("logits", "input") else 0.0, norm) for k, v in reference.items()}


ORDERS = 4      # the plain float32 path's rounding spread: the batch in up to 4 orders


def compare_paths(name, steps, batch=4, seed=0):
    """Per step and mode: the float64 errors of fast against plain, for float32 the errors
    of fast against the float64 plain path, and ``plain32(i)``: the errors of the plain
    float32 path against it with the batch in its i-th order (0: as it is)."""
    rng = np.random.default_rng(seed)
    shape = SHAPES[name]
    m64 = models.get_model(name, rng=np.random.default_rng(1)).to(np.float64)
    if hasattr(m64, "init_from_data"):
        m64.init_from_data(rng.standard_normal((8,) + shape))
    m32 = copy.deepcopy(m64).to(np.float32)
    fast64, fast32 = minitorch_cnn.compile(m64), minitorch_cnn.compile(m32)
    state = m64.state_dict()
    for mode in [True] * steps + [False]:
        m64.train(mode)
        m32.train(mode)
        x = rng.standard_normal((batch,) + shape)
        targets = rng.integers(0, 10, batch)
        plain = one_step(m64, m64, x, targets, state)
        # a gradient that is 0 in exact arithmetic (a conv bias before a BatchNorm in
        # training) is held to 1e-12 of the largest gradient: 1e-10 of this floor
        floor = 1e-2 * max(np.abs(plain[f"grad {k}"]).max() for k, p in m64.named_parameters()
                           if p.requires_grad)
        e64 = errors_against(one_step(fast64, m64, x, targets, state), plain, floor)
        x32 = x.astype(np.float32)
        e32_fast = errors_against(one_step(fast32, m32, x32, targets, state), plain, floor, 2)

        def plain32(i, x32=x32, targets=targets, state=state, plain=plain, floor=floor):
            order = np.random.default_rng(i).permutation(batch) if i else None
            return errors_against(one_step(m32, m32, x32, targets, state, order), plain,
                                  floor, 2)
        yield mode, e64, e32_fast, plain32
        state = {k: v for k, v in m64.state_dict().items()}   # the plain step's statistics
        m64.load_state_dict(state)


# float32: a few dozen roundings of a result of relative size 1 (eps32 = 2**-24 = 6e-8)
F32_FLOOR = 64 * 2.0**-24
# the compiled path's convolutions may round up to 4x as much as im2col + GEMM
# (tests/test_fast_algorithms.py::F32_BOUND: 2x, 4x for dx of the dense small-map form)
F32_ALGORITHM_FACTOR = 4.0


def float32_bound(errors_of_plain):
    """What float32 rounding alone does to one tensor: the largest error of the plain path
    over the batch orders tried, times F32_ALGORITHM_FACTOR, and at least F32_FLOOR."""
    return max(F32_ALGORITHM_FACTOR * max(errors_of_plain), F32_FLOOR)


def continuous(key):
    """The results that are continuous functions of the input and the state: the forward
    (logits, loss) and the running statistics. The gradients jump where a ReLU input or a
    max-pool's runner-up crosses zero or the maximum."""
    return key in ("logits", "loss") or "running_" in key


@pytest.mark.parametrize("name", list(models.MODELS))
def test_compiled_model_equals_the_plain_model(name):
    """float64: fast == plain to 1e-10 (max norm): outputs, loss, input gradient, every
    learnable gradient, running statistics. float32, no fitted constant (the bound holds on
    any CPU's BLAS): the forward and the running statistics of the fast path are as far from
    the float64 result as float32 rounding alone moves the plain path, measured in this
    test: at most ``float32_bound`` of the plain float32 path's errors with the batch in its
    own order and, while that is not enough, in up to ORDERS - 1 shuffled orders (the same
    maths, other rounding); 2-norm. Gradients are compared in float64 only: float32
    rounding flips the odd ReLU mask at a value within 1e-7 of zero, a kink of the
    function, which moves gradients by O(1) on either path at random (the seed model's
    input gradient: 5e-5 to 2e-2 from float64's over four orders of the same batch on the
    plain path alone; ResNet-152's in eval 1e-6 on the plain path in every order, 1.3e-3
    on the compiled one), so no bound from a few draws holds for them."""
    for mode, e64, e32_fast, plain32 in compare_paths(name, 1 if name in HEAVY else 2):
        where = "train" if mode else "eval"
        bad = {k: v for k, v in e64.items() if not v <= 1e-10}
        assert not bad, (name, where, "float64", bad)
        seen = []
        for i in range(ORDERS):
            seen.append(plain32(i))
            bad = {k: (v, [e[k] for e in seen]) for k, v in e32_fast.items()
                   if continuous(k) and not v <= float32_bound([e[k] for e in seen])}
            if not bad:
                break
        assert not bad, (name, where, "float32: fast's error, plain's in each order", bad)


def adjacencies(model, shape):
    """BatchNorm2d -> ReLU edges of the traced forward, counted straight from the data flow,
    whoever else reads the BatchNorm's output."""
    s = summary(model, shape)
    modules = dict(model.named_modules())
    bn_relu = 0
    for r in s.rows:
        if r.type == "add" or r.inputs[0] in (-1, None):
            continue
        src = s.rows[r.inputs[0]]
        a, b = modules.get(src.name), modules.get(r.name)
        bn_relu += isinstance(a, nn.BatchNorm2d) and isinstance(b, nn.ReLU)
    return bn_relu


# The expected counts are the models' structure: e.g. the seed's 53 conv1x1/conv3x3 helpers
# (stem + 13 blocks x 4 helpers) each end Conv2d(bias) -> BN -> ReLU.
COVERAGE = {"resnet50_layer4": 53, "resnet50_layer4_paper": 45, "resnet8": 4, "resnet18": 9,
            "resnet50": 33, "resnet152": 101, "fastnet": 7, "fastnet_whiten": 6}


@pytest.mark.parametrize("name", list(models.MODELS))
def test_every_bn_relu_adjacency_is_fused(name):
    model = models.get_model(name)
    fast = minitorch_cnn.compile(model, input_shape=SHAPES[name])
    bn_relu = adjacencies(model, SHAPES[name])
    assert fast.fusion_counts()["bn_relu"] == bn_relu, name
    if name in COVERAGE:
        assert bn_relu == COVERAGE[name]


def test_no_input_gradient_for_the_layer_that_reads_the_data():
    model = models.resnet50_layer4(rng=np.random.default_rng(0)).to(np.float64)
    x = np.random.default_rng(1).standard_normal((2, 32, 32, 3))
    fast = minitorch_cnn.compile(model, input_grad=False)
    y = fast(x)
    g = np.random.default_rng(2).standard_normal(y.shape)
    assert fast.backward(g) is None and fast.plan.stem == "layer1.0"
    grads = {k: p.grad.copy() for k, p in model.named_parameters()}
    model.zero_grad()
    model(x)
    assert model.backward(g).shape == x.shape
    floor = max(np.abs(p.grad).max() for p in model.parameters())
    for k, p in model.named_parameters():
        np.testing.assert_allclose(grads[k], p.grad, rtol=1e-9, atol=1e-9 * floor, err_msg=k)


class TwoReaders(nn.Module):
    """A BatchNorm2d output read by a ReLU *and* by the residual sum: fusing would be wrong."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, rng=np.random.default_rng(0), dtype=np.float64)
        self.bn = nn.BatchNorm2d(4, dtype=np.float64)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.bn(self.conv(x))
        return self.relu(y) + y

    def backward(self, g):
        return self.conv.backward(self.bn.backward(self.relu.backward(g) + g))


class Doubling(TwoReaders):
    """Container code the trace cannot follow (a multiply): nothing is fused, still exact."""

    def forward(self, x):
        return self.relu(self.bn(self.conv(x))) * 2.0

    def backward(self, g):
        return self.conv.backward(self.bn.backward(self.relu.backward(g * 2.0)))


@pytest.mark.parametrize("cls,fused", [(TwoReaders, 0), (Doubling, 0)])
def test_fusions_only_where_the_data_flow_allows(cls, fused):
    model = cls()
    x = np.random.default_rng(1).standard_normal((2, 5, 6, 3))
    fast = minitorch_cnn.compile(model)
    y_fast = fast(x)
    g = np.random.default_rng(2).standard_normal(y_fast.shape)
    dx_fast = fast.backward(g)
    assert fast.fusion_counts()["bn_relu"] == fused
    if cls is Doubling:
        assert "not traced" in repr(fast)
    grads = {k: p.grad.copy() for k, p in model.named_parameters()}
    model.zero_grad()
    model.load_state_dict({k: v for k, v in model.state_dict().items()})
    model.bn.running_mean[...] = 0
    model.bn.running_var[...] = 1
    model.bn.num_batches_tracked = 0
    np.testing.assert_allclose(model(x), y_fast, rtol=1e-12)
    np.testing.assert_allclose(model.backward(g), dx_fast, rtol=1e-10, atol=1e-12)
    for k, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_a_subclassed_layer_keeps_its_own_code():
    class Leaky(nn.ReLU):
        def forward(self, x):
            return super().forward(x) + 0.5 * x      # not a ReLU any more

    model = nn.Sequential(nn.BatchNorm2d(3, dtype=np.float64), Leaky())
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 3))
    fast = minitorch_cnn.compile(model)
    fast(x)
    assert fast.fusion_counts()["bn_relu"] == 0 and model[1] not in fast.plan.fast


def test_runner_shares_parameters_state_and_modes_and_switches_between_steps():
    model = models.resnet8(rng=np.random.default_rng(0))
    fast = minitorch_cnn.compile(model)
    assert fast.parameters() == model.parameters()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(1)
    criterion = nn.CrossEntropyLoss()
    for run in (fast, model, fast):                  # switch paths between steps
        x, t = rng.standard_normal((4, 32, 32, 3)).astype(np.float32), rng.integers(0, 10, 4)
        criterion(run(x), t)
        run.backward(criterion.backward())
        opt.step()
        run.zero_grad()
    assert int(model.bn1.num_batches_tracked) == 3
    assert fast.eval() is fast and not model.training and not fast.training
    fast.train()
    assert all(m.training for m in model.modules())
    assert fast.state_dict().keys() == model.state_dict().keys()
    assert not any("forward" in m.__dict__ for m in model.modules())   # nothing left lent
    with pytest.raises(TypeError, match="expected a minitorch_cnn Module"):
        minitorch_cnn.compile(np.zeros(3))
    with pytest.raises(ValueError, match="unknown fusions"):
        minitorch_cnn.compile(model, fusions=("winograd-bn",), input_shape=(32, 32, 3))


def test_the_algorithm_follows_the_batch_not_the_trace():
    """The plan traces one image, but a convolution's algorithm may depend on the batch
    (F(4x4, 3x3) needs 512 4x4 tiles): each batch size gets its own choice."""
    model = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1, rng=np.random.default_rng(0)))
    fast = minitorch_cnn.compile(model, input_shape=(8, 8, 64))
    assert "winograd-4x4" not in fast.describe()               # traced with one image
    x = np.random.default_rng(1).standard_normal((128, 8, 8, 64)).astype(np.float32)
    np.testing.assert_allclose(fast(x), model(x), rtol=1e-4, atol=1e-4)
    assert "winograd-4x4" in fast.describe() and "winograd-2x2" in fast.describe()


def test_repr_and_summary_say_what_was_fused_and_which_algorithm():
    fast = minitorch_cnn.compile(models.resnet50_layer4())
    assert "not traced yet" in repr(fast)
    fast.trace((32, 32, 3))
    fast(np.zeros((2, 32, 32, 3), np.float32))
    text = repr(fast)
    assert "53 BatchNorm2d+ReLU fused" in text
    assert "im2col+gemm" in text and "gemm (1x1: no im2col copy)" in text
    table = minitorch_cnn.summary(fast, (32, 32, 3)).table()
    assert "Fast path" in table and "+ the ReLU after it" in table
    assert "layer1.0: Conv2d: im2col+gemm" in fast.describe()


# ---------------------------------------------------------- the fast twins, one by one
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_fast_batchnorm_twin_equals_conv_bn_relu(training, relu):
    rng = np.random.default_rng(7)
    model = nn.Sequential(nn.Conv2d(3, 5, 3, 2, 1, rng=rng, dtype=np.float64),
                          nn.BatchNorm2d(5, dtype=np.float64), nn.ReLU())
    model[0].bias.data[:] = rng.standard_normal(5) * 3
    model[1].weight.data[:] = rng.standard_normal(5)
    model[1].running_mean[:] = rng.standard_normal(5)
    model.train(training)
    x, g = rng.standard_normal((3, 7, 6, 3)), rng.standard_normal((3, 4, 3, 5))
    twins = {model[0]: FastConv2d(model[0]),
             model[1]: FastBatchNorm2d(model[1], relu=relu),
             model[2]: FastReLU(model[2], fused=relu)}
    state = copy.deepcopy(model.state_dict())
    y0, dx0 = model(x), model.backward(g)
    grads0 = [p.grad.copy() for p in model.parameters()]
    stats0 = model[1].running_mean.copy()
    model.load_state_dict(state)
    model.zero_grad()
    h = x
    for m in model:
        h = twins[m].forward(h)
    d = g
    for m in reversed(list(model)):
        d = twins[m].backward(d)
    np.testing.assert_allclose(h, y0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d, dx0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model[1].running_mean, stats0, rtol=1e-12)
    for a, b in zip(grads0, model.parameters()):
        np.testing.assert_allclose(b.grad, a, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("recompute", [False, True])
def test_im2col_algorithm_keeps_or_rebuilds_the_matrix_with_the_same_results(recompute):
    rng = np.random.default_rng(6)
    conv = nn.Conv2d(3, 5, 3, 2, 1, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 7, 8, 3))
    y0 = conv(x)
    g = rng.standard_normal(y0.shape)
    dx0 = conv.backward(g)
    alg = Im2colGemm(x.shape, conv.weight.shape, conv.stride, conv.padding, recompute)
    y, saved = alg.forward(x, conv.weight.data)
    assert (saved[1] is x) == recompute                  # the input, not a copy, is kept
    dx, dw = alg.backward(g, saved, conv.weight.data, need_dx=True)
    np.testing.assert_allclose(y + conv.bias.data, y0, rtol=1e-12)
    np.testing.assert_allclose(dx, dx0, rtol=1e-12)
    np.testing.assert_allclose(dw, conv.weight.grad, rtol=1e-12)
    assert alg.backward(g, saved, conv.weight.data, need_dx=False)[0] is None


def test_a_frozen_weight_gets_no_gradient_on_the_fast_path():
    conv = nn.Conv2d(3, 4, 2, rng=np.random.default_rng(0), dtype=np.float64)
    conv.weight.requires_grad = False
    twin = FastConv2d(conv, input_grad=False)
    y = twin.forward(np.ones((1, 3, 3, 3)))
    assert twin.backward(np.ones_like(y)) is None
    assert not conv.weight.grad.any() and (conv.bias.grad == 4).all()
