"""The compiled runner's guards (minitorch_cnn/fast/guards.py): a model edited after its
trace is re-planned, a backward of the other path's forward is refused, one call runs at a
time, and a call that fails leaves the model as it was. Everything in float64."""
import copy
import pickle
import threading

import numpy as np
import pytest

import minitorch_cnn
from minitorch_cnn import models, nn


def resnet8(seed=0):
    """resnet8 in float64 from a random state: BatchNorm weights ~N(1, 0.5), biases, statistics."""
    rng = np.random.default_rng(seed)
    model = models.resnet8(rng=rng).to(np.float64)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data[:] = rng.normal(1.0, 0.5, m.num_features)
            m.bias.data[:] = rng.normal(0.0, 0.3, m.num_features)
            m.running_mean[:] = rng.normal(0.0, 0.3, m.num_features)
            m.running_var[:] = rng.uniform(0.5, 2.0, m.num_features)
    return model


def batch(n=3, size=16, seed=1):
    return np.random.default_rng(seed).standard_normal((n, size, size, 3))


def fresh_plain(model, x, g):
    """What the plain path gives on a deep copy of ``model``: (y, dx, {name: grad})."""
    twin = copy.deepcopy(model)
    twin.zero_grad()
    y = twin(x)
    dx = twin.backward(g)
    return y, dx, {k: p.grad.copy() for k, p in twin.named_parameters()}


def assert_same_step(run, model, x, g):
    """One forward and backward through ``run`` equal the plain path's, from the same state
    (a frozen weight gets no gradient on the fast path, as in PyTorch: it is left out)."""
    y0, dx0, grads0 = fresh_plain(model, x, g)
    model.zero_grad()
    y = run(x)
    np.testing.assert_allclose(y, y0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(run.backward(g), dx0, rtol=1e-9, atol=1e-12)
    for k, p in model.named_parameters():
        if p.requires_grad:
            np.testing.assert_allclose(p.grad, grads0[k], rtol=1e-8, atol=1e-11, err_msg=k)


# ------------------------------------------------------ a model edited after its trace
def relu_to_gelu(model):
    model.relu = nn.GELU()


def add_a_layer(model):
    model.fc = nn.Sequential(nn.Linear(64, 10, rng=np.random.default_rng(3), dtype=np.float64),
                             nn.ReLU())


def drop_a_block(model):
    del model.layer1._modules["0"]                  # 16 -> 16 channels, stride 1: shapes hold


def identity_for_relu(model):
    model.layer3[0].relu1 = nn.Identity()


def new_weight_shape(model):
    model.fc = nn.Linear(64, 7, rng=np.random.default_rng(3), dtype=np.float64)


def freeze_the_stem(model):
    model.conv1.weight.requires_grad = False


def new_conv_bias(model):
    model.conv1.bias = nn.Parameter(np.full(16, 0.3))


@pytest.mark.parametrize("edit,says", [
    (relu_to_gelu, "relu replaced (ReLU -> GELU)"),
    (add_a_layer, "fc replaced (Linear -> Sequential)"),
    (drop_a_block, "layer1.0 (BasicBlock) removed"),
    (identity_for_relu, "layer3.0.relu1 replaced (ReLU -> Identity)"),
    (new_weight_shape, "fc replaced (Linear -> Linear)"),
    (freeze_the_stem, "conv1.weight.requires_grad True -> False"),
    (new_conv_bias, "conv1.bias added"),
])
def test_an_edited_model_is_replanned_and_runs_as_edited(edit, says):
    model = resnet8()
    fast = minitorch_cnn.compile(model)
    x = batch()
    fast(x)
    fast.backward(np.ones((3, 10)))
    edit(model)
    y = model(x)
    g = np.random.default_rng(2).standard_normal(y.shape)
    model.backward(g)
    assert_same_step(fast, model, x, g)
    assert fast.replans == 1 and says in fast.replan_reason
    fast(x)
    assert fast.replans == 1                         # nothing changed since: no second plan


def test_a_new_input_shape_is_replanned_but_a_new_batch_size_is_not():
    model = resnet8()
    fast = minitorch_cnn.compile(model, input_shape=(16, 16, 3))
    x = batch(size=12)
    y = fast(x)
    assert fast.replans == 1 and fast.replan_reason == "input (H, W, C) (16, 16, 3) -> (12, 12, 3)"
    fast.backward(np.ones_like(y))
    assert_same_step(fast, model, batch(n=5, size=12), np.ones((5, 10)))
    assert fast.replans == 1


def test_the_issue_example_gelu_after_the_first_call():
    """Issue 23's report: compile(resnet8); fast(x); model.relu = GELU(): fast(x) was the old net."""
    model = resnet8().eval()
    fast = minitorch_cnn.compile(model)
    x = batch()
    fast(x)
    model.relu = nn.GELU()
    np.testing.assert_allclose(fast(x), model(x), rtol=1e-12, atol=1e-12)


def test_a_model_edited_between_forward_and_backward_is_refused():
    model = resnet8()
    fast = minitorch_cnn.compile(model)
    y = fast(batch())
    model.layer1[0].conv1.weight.requires_grad = False
    with pytest.raises(RuntimeError, match=r"changed after the forward \(layer1\.0\.conv1\.weight"
                                           r"\.requires_grad True -> False\)"):
        fast.backward(np.ones_like(y))


# ------------------------------------------------------------------------ mixed pairs
@pytest.mark.parametrize("forward_on,backward_on,says", [
    ("fast", "model", "ran on the fast path.*call that runner's backward"),
    ("model", "fast", "'conv1' ran a forward after this runner's"),
])
def test_a_backward_of_the_other_paths_forward_is_refused_before_any_gradient(
        forward_on, backward_on, says):
    model = resnet8()
    x, g = batch(), np.random.default_rng(2).standard_normal((3, 10))
    _, dx0, grads0 = fresh_plain(model, x, g)
    paths = {"fast": minitorch_cnn.compile(model), "model": model}
    paths[backward_on](batch(seed=5))    # an older forward there: its caches must not be used
    paths[forward_on](x)
    model.zero_grad()
    with pytest.raises(RuntimeError, match=says):
        paths[backward_on].backward(g)
    assert not any(p.grad.any() for p in model.parameters())
    np.testing.assert_allclose(paths[forward_on].backward(g), dx0, rtol=1e-9)   # its own works
    for k, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads0[k], rtol=1e-8, atol=1e-11, err_msg=k)
    with pytest.raises(RuntimeError, match="no forward of this runner|called before forward"):
        paths["fast"].backward(g)


def test_two_runners_on_one_model_each_refuse_the_others_forward():
    model = resnet8()
    a, b = minitorch_cnn.compile(model), minitorch_cnn.compile(model, fusions=())
    x, g = batch(), np.ones((3, 10))
    a(x)
    b(x)
    with pytest.raises(RuntimeError, match="ran a forward after this runner's"):
        a.backward(g)
    b.backward(g)
    with pytest.raises(RuntimeError, match="no forward of this runner.*twice"):
        b.backward(g)


def test_a_model_after_a_compiled_forward_can_be_copied_and_pickled():
    model = resnet8()
    fast = minitorch_cnn.compile(model)
    fast(batch())
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        with pytest.raises(RuntimeError, match="ran on the fast path"):
            twin.backward(np.ones((3, 10)))
        y = twin(batch())
        assert twin.backward(np.ones_like(y)).shape == (3, 16, 16, 3)


# ------------------------------------------------------------- nested calls and threads
class Gate(nn.Module):
    """Identity that, while ``wait`` is set, signals ``entered`` and blocks until released."""

    def __init__(self):
        super().__init__()
        self.wait, self.entered, self.release = False, threading.Event(), threading.Event()

    def forward(self, x):
        if self.wait:
            self.entered.set()
            assert self.release.wait(60)
        return x

    def backward(self, g):
        return g


def gated():
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64),
                         nn.BatchNorm2d(4, dtype=np.float64), nn.ReLU(), Gate())


def test_a_second_call_while_one_runs_in_another_thread_is_refused():
    model = gated()
    x = batch(n=2, size=5)
    fast = minitorch_cnn.compile(model)
    other = minitorch_cnn.compile(model, input_shape=x.shape[1:])   # traced before the gate shuts
    fast(x)
    fast.backward(np.ones((2, 5, 5, 4)))
    gate, errors = model[3], []
    gate.wait = True
    worker = threading.Thread(target=lambda: errors.append(fast(x).shape))
    worker.start()
    try:
        assert gate.entered.wait(60)
        with pytest.raises(RuntimeError, match="already running a call"):
            fast(x)
        with pytest.raises(RuntimeError, match="already running a call"):
            fast.backward(np.ones((2, 5, 5, 4)))
        with pytest.raises(RuntimeError, match="layer '0' already runs another fast twin"):
            other(x)
    finally:
        gate.release.set()
        worker.join(60)
    assert errors == [(2, 5, 5, 4)]      # the first call finished undisturbed
    gate.wait = False
    del gate.entered, gate.release       # (events do not deep-copy)
    assert_same_step(fast, model, x, np.ones((2, 5, 5, 4)))


class Nested(nn.Module):
    """A model whose forward calls a runner over its own body: nested compiled calls."""

    def __init__(self):
        super().__init__()
        self.body = gated()
        self.inner = minitorch_cnn.compile(self.body)

    def forward(self, x):
        return self.inner(x)

    def backward(self, g):
        return self.inner.backward(g)


def test_a_nested_runner_over_the_same_layers_is_refused_and_the_model_left_clean():
    model = Nested()
    x = batch(n=2, size=5)
    with pytest.raises(RuntimeError, match="nested runners"):
        minitorch_cnn.compile(model)(x)
    assert not any("forward" in m.__dict__ or "backward" in m.__dict__ for m in model.modules())
    y = model(x)                          # the inner runner alone is fine
    assert model.backward(np.ones_like(y)).shape == x.shape


def test_a_forward_patched_onto_a_layer_is_refused_not_overwritten():
    model = gated()
    patched = lambda x: x  # noqa: E731
    model[2].forward = patched
    with pytest.raises(RuntimeError, match="layer '2' already runs"):
        minitorch_cnn.compile(model)(batch(n=2, size=5))
    assert model[2].__dict__["forward"] is patched


# ------------------------------------------------------------ a call that fails midway
class Faulty(nn.Module):
    def __init__(self):
        super().__init__()
        self.fail = False

    def forward(self, x):
        if self.fail:
            raise FloatingPointError("planted")
        return x

    def backward(self, g):
        return g


def test_an_exception_mid_call_leaves_the_model_as_it_was():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64),
                          nn.BatchNorm2d(4, dtype=np.float64), nn.ReLU(), Faulty(),
                          nn.Conv2d(4, 2, 1, rng=rng, dtype=np.float64))
    fast = minitorch_cnn.compile(model)
    x, g = batch(n=2, size=5), np.random.default_rng(2).standard_normal((2, 5, 5, 2))
    fast(x)
    fast.backward(g)
    params = {k: v.copy() for k, v in model.state_dict().items()}
    model[3].fail = True
    with pytest.raises(FloatingPointError, match="planted"):
        fast(x)
    assert not any("forward" in m.__dict__ or "backward" in m.__dict__ for m in model.modules())
    state = model.state_dict()
    for k, v in params.items():                      # only BatchNorm's statistics moved
        if "running" not in k and "num_batches" not in k:
            np.testing.assert_array_equal(state[k], v, err_msg=k)
    with pytest.raises(RuntimeError, match="no forward of this runner"):
        fast.backward(g)
    with pytest.raises(RuntimeError, match="ran on the fast path"):
        model.backward(g)
    model[3].fail = False
    assert_same_step(fast, model, x, g)
    assert fast.replans == 0


def test_summary_of_a_runner_takes_the_runners_notes_and_leaves_its_plan_alone():
    model = resnet8()
    fast = minitorch_cnn.compile(model)
    x, g = batch(), np.random.default_rng(2).standard_normal((3, 10))
    _, dx0, _ = fresh_plain(model, x, g)
    fast(x)
    plan = fast.plan
    table = minitorch_cnn.summary(fast, (32, 32, 3)).table()      # another shape, mid-step
    assert "Fast path" in table and "done by the BatchNorm2d before it" in table
    assert fast.plan is plan and fast.replans == 0
    np.testing.assert_allclose(fast.backward(g), dx0, rtol=1e-9)
