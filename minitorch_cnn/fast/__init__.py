"""The fast path: ``minitorch_cnn.compile(model)`` runs the same model faster.

The teaching path is the layer and model classes a student reads: plain
forward and backward, no performance flags. This package runs the *same*
model -- the same Parameters and buffers, the model's own forward and
backward code -- but lends each teaching layer a fast twin for the duration
of each call (``fast/conv.py``, ``fast/layers.py``), with the fusions that a
trace of the forward found safe (``fast/plan.py``) and, per convolution
shape, an algorithm (``fast/algorithms.py``). tests/test_fast.py proves the
two paths equal for every model of the zoo; docs/fast_path.md explains it.

    fast = minitorch_cnn.compile(model)          # model is unchanged
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    logits = fast(x)                             # the compiled forward
    fast.backward(criterion.backward())          # gradients land in model's Parameters
    optimizer.step()

Switch between the paths between steps, never between a forward and its
backward (each path keeps its own cache).
"""
import contextlib

from .plan import FUSIONS, Plan, make_plan

__all__ = ["compile", "CompiledModel", "FUSIONS", "Plan", "make_plan"]


class CompiledModel:
    """A runner for ``model`` on the fast path; see :func:`compile`.

    ``forward``/``__call__``, ``backward``, ``train()``, ``eval()``,
    ``parameters()``, ``named_parameters()``, ``state_dict()``,
    ``load_state_dict()`` and ``zero_grad()`` behave as the model's (the
    last five *are* the model's). ``plan`` is None until the first forward
    (or ``input_shape`` given to :func:`compile`) has traced the model.
    """

    def __init__(self, model, input_grad=True, fusions=FUSIONS, input_shape=None):
        from ..nn import Module
        if not isinstance(model, Module):
            raise TypeError(f"compile: expected a minitorch_cnn Module, got {type(model).__name__}")
        self.model, self.input_grad, self.fusions = model, bool(input_grad), tuple(fusions)
        self.plan = None
        if input_shape is not None:
            self.trace(input_shape)

    def trace(self, sample_shape):
        """(Re)plan the fusions from a trace on one sample of shape (H, W, C)."""
        self.plan = make_plan(self.model, tuple(sample_shape), self.fusions, self.input_grad)
        return self.plan

    @contextlib.contextmanager
    def _lent(self):
        """Each teaching layer runs its fast twin inside this block, and only there."""
        lent = list(self.plan.fast.items())
        try:
            for layer, twin in lent:
                object.__setattr__(layer, "forward", twin.forward)
                object.__setattr__(layer, "backward", twin.backward)
            yield
        finally:
            for layer, _ in lent:
                layer.__dict__.pop("forward", None)
                layer.__dict__.pop("backward", None)

    def forward(self, x):
        if self.plan is None:
            if getattr(x, "ndim", 0) < 2:
                raise ValueError(f"compile: expected a batch (N, ...), got {getattr(x, 'shape', x)!r}")
            self.trace(x.shape[1:])
        with self._lent():
            return self.model.forward(x)

    __call__ = forward

    def backward(self, grad_out):
        if self.plan is None:
            raise RuntimeError("CompiledModel.backward called before forward")
        with self._lent():
            return self.model.backward(grad_out)

    # ------------------------------------------------ the model's own state
    @property
    def training(self):
        return self.model.training

    def train(self, mode=True):
        self.model.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def parameters(self):
        return self.model.parameters()

    def named_parameters(self, prefix=""):
        return self.model.named_parameters(prefix)

    def state_dict(self):
        return self.model.state_dict()

    def load_state_dict(self, state_dict, strict=True):
        return self.model.load_state_dict(state_dict, strict)

    def zero_grad(self):
        self.model.zero_grad()

    # ------------------------------------------------------------- report
    def describe(self):
        """One line per fast layer: its name, type and what the fast path does there."""
        if self.plan is None:
            return "not traced yet (traced at the first forward)"
        names = {id(m): n for n, m in self.model.named_modules()}
        lines = [f"{names[id(layer)] or type(layer).__name__}: {type(layer).__name__}: "
                 f"{twin.describe()}" for layer, twin in self.plan.fast.items()]
        return "\n".join(lines)

    def fusion_counts(self):
        """{"bn_relu": n, "conv_bias": n, "stem_input_grad_skipped": 0/1}."""
        p = self.plan
        return {"bn_relu": len(p.bn_relu), "conv_bias": len(p.conv_bias),
                "stem_input_grad_skipped": int(p.stem is not None)}

    def __repr__(self):
        head = f"CompiledModel({type(self.model).__name__}"
        if self.plan is None:
            return head + ", not traced yet)"
        p = self.plan
        algs = {}
        for twin in p.fast.values():
            for a in getattr(twin, "algorithms", {}).values():
                algs[a.name] = algs.get(a.name, 0) + 1
        parts = [f"{len(p.bn_relu)} BatchNorm2d+ReLU fused",
                 f"{len(p.conv_bias)} Conv2d biases folded into BatchNorm2d"]
        if p.stem:
            parts.append(f"{p.stem}: no input gradient")
        if algs:
            parts.append("convolutions: " + ", ".join(f"{n} x{k}" for n, k in sorted(algs.items())))
        if p.note:
            parts.append(p.note)
        return head + ": " + "; ".join(parts) + ")"


def compile(model, *, input_grad=True, fusions=FUSIONS, input_shape=None):  # noqa: A001
    """The fast path for ``model``: a :class:`CompiledModel` sharing its Parameters and buffers.

    ``input_grad=False`` lets the first convolution skip the gradient of the
    data (backward then returns None), as PyTorch does for an input that
    does not require grad; the trainer uses it. ``fusions`` picks from
    :data:`FUSIONS` (``()`` for none). ``input_shape`` (H, W, C) traces the
    model now rather than at the first forward.
    """
    return CompiledModel(model, input_grad=input_grad, fusions=fusions, input_shape=input_shape)
