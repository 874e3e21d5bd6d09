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

Switch between the paths between steps: a backward whose forward ran on the
other path is refused (fast/guards.py), as is a call while another runs.
"""
import contextlib
import threading

from . import guards
from .plan import FUSIONS, Plan, make_plan

__all__ = ["compile", "CompiledModel", "FUSIONS", "Plan", "make_plan"]


class CompiledModel:
    """A runner for ``model`` on the fast path; see :func:`compile`.

    ``forward``/``__call__``, ``backward``, ``train()``, ``eval()``,
    ``parameters()``, ``named_parameters()``, ``state_dict()``,
    ``load_state_dict()`` and ``zero_grad()`` behave as the model's (the
    last five *are* the model's). ``plan`` is None until the first forward
    (or ``input_shape`` given to :func:`compile`) has traced the model.

    Guards (fast/guards.py, docs/fast_path.md): each forward re-plans when
    the model or the input's (H, W, C) changed since the trace (``replans``
    counts it, ``replan_reason`` says what changed); a backward is refused
    when its forward ran on the other path, when the model changed since its
    forward, and while another call of this runner (another thread, or a
    nested call) or another runner over the same layers is running.
    """

    def __init__(self, model, input_grad=True, fusions=FUSIONS, input_shape=None):
        from ..nn import Module
        if not isinstance(model, Module):
            raise TypeError(f"compile: expected a minitorch_cnn Module, got {type(model).__name__}")
        self.model, self.input_grad, self.fusions = model, bool(input_grad), tuple(fusions)
        self.plan = None
        self.replans, self.replan_reason = 0, None
        self._busy = threading.Lock()
        self._token = None          # the marker of the last forward, until its backward
        self._stash = []            # [(module, its own cache)] of that forward's plain-code layers
        if input_shape is not None:
            self.trace(input_shape)

    def trace(self, sample_shape):
        """(Re)plan the fusions from a trace on one sample of shape (H, W, C)."""
        self.plan = make_plan(self.model, tuple(sample_shape), self.fusions, self.input_grad)
        self._sample = tuple(int(s) for s in sample_shape)
        self._layout = guards.layout(self.model)
        self._described = guards.described(self.model)
        self._lend = [(layer.__dict__, twin.forward, twin.backward)
                      for layer, twin in self.plan.fast.items()]
        self._cached = [m for m in self.model.modules() if "_cache" in m.__dict__]
        self._token = None
        return self.plan

    def _changed(self, sample):
        """'' when the model and the sample shape are those of the plan, else what changed."""
        if sample == self._sample and guards.layout(self.model) == self._layout:
            return ""
        what = guards.what_changed(self._described, guards.described(self.model))
        if sample != self._sample:
            what = f"input (H, W, C) {self._sample} -> {sample}" + (
                "; " + what if what != "the module tree changed (order or classes)" else "")
        return what

    @contextlib.contextmanager
    def _running(self, what):
        """One call of this runner at a time."""
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(f"CompiledModel.{what}: this runner is already running a call "
                               "(from another thread, or the model's forward calls its own "
                               "runner); it runs one call at a time")
        try:
            yield
        finally:
            self._busy.release()

    @contextlib.contextmanager
    def _lent(self):
        """Each teaching layer runs its fast twin inside this block, and only there."""
        with guards.LENDING:
            for d, _, _ in self._lend:
                if "forward" in d or "backward" in d:
                    raise RuntimeError(self._conflict(d))
            for d, forward, backward in self._lend:
                d["forward"], d["backward"] = forward, backward
        try:
            yield
        finally:
            for d, _, _ in self._lend:
                d.pop("forward", None)
                d.pop("backward", None)

    def _conflict(self, d):
        name = next(n for n, m in self.model.named_modules() if m.__dict__ is d)
        return (f"CompiledModel: layer {name or type(self.model).__name__!r} already runs "
                "another fast twin or an instance forward of its own: a compiled call inside "
                "another compiled call over the same layers (nested runners), two threads at "
                "once, or a forward patched onto the layer; refused, a model runs one "
                "compiled call at a time")

    def forward(self, x):
        shape = getattr(x, "shape", None)
        if shape is None or len(shape) < 2:
            raise ValueError(f"compile: expected a batch (N, ...), got {getattr(x, 'shape', x)!r}")
        sample = tuple(shape[1:])
        with self._running("forward"):
            if self.plan is None:
                self.trace(sample)
            elif sample != self._sample or guards.layout(self.model) != self._layout:
                reason = self._changed(sample)        # the model or the input changed: re-plan
                self.trace(sample)
                self.replans, self.replan_reason = self.replans + 1, reason
            token = guards.RanOnFastPath(type(self.model).__name__)
            self._token, self._stash = None, []
            for m in self._cached:                    # no module's own cache survives this call
                m.__dict__["_cache"] = token
            with self._lent():
                y = self.model.forward(x)
            stash = self._stash
            for m in self._cached:                    # keep what the plain-code layers cached
                cache = m.__dict__.get("_cache")
                if cache is not token:
                    stash.append((m, cache))
                    m.__dict__["_cache"] = token
            self._token = token
            return y

    __call__ = forward

    def backward(self, grad_out):
        with self._running("backward"):
            if self.plan is None or self._token is None:
                raise RuntimeError("CompiledModel.backward: no forward of this runner to go back "
                                   "through (called before forward, or twice: each forward "
                                   "allows one backward)")
            token, self._token = self._token, None
            changed = self._changed(self._sample)
            if changed:
                raise RuntimeError(f"CompiledModel.backward: the model changed after the "
                                   f"forward ({changed}); run the forward again")
            ran_since = [m for m in self._cached if m.__dict__.get("_cache") is not token]
            if ran_since:
                names = {id(m): n for n, m in self.model.named_modules()}
                raise RuntimeError(
                    f"CompiledModel.backward: {names[id(ran_since[0])] or 'the model'!r} ran a "
                    "forward after this runner's (the model's own forward, or another "
                    "runner's): call backward on the path that ran the forward")
            for m, cache in self._stash:
                m.__dict__["_cache"] = cache
            self._stash = []
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

    def fast_notes(self, sample_shape):
        """{layer name: what the fast path does there}, planned for one sample of shape (H, W, C):
        the "Fast path" column of ``minitorch_cnn.summary(compiled_model, shape)``."""
        sample = tuple(int(s) for s in sample_shape)
        plan = self.plan
        if plan is None or self._changed(sample):     # another shape: a plan of its own
            plan = make_plan(self.model, sample, self.fusions, self.input_grad)
        twins = {name: plan.fast.get(m) for name, m in self.model.named_modules()}
        return {name or type(self.model).__name__: twin.describe()
                for name, twin in twins.items() if twin is not None}

    def fusion_counts(self):
        """{"bn_relu": n, "stem_input_grad_skipped": 0/1}."""
        p = self.plan
        return {"bn_relu": len(p.bn_relu), "stem_input_grad_skipped": int(p.stem is not None)}

    def __repr__(self):
        head = f"CompiledModel({type(self.model).__name__}"
        if self.plan is None:
            return head + ", not traced yet)"
        p = self.plan
        algs = {}
        for twin in p.fast.values():                  # layers per algorithm, over their shapes
            for name in {a.name for a in getattr(twin, "algorithms", {}).values()}:
                algs[name] = algs.get(name, 0) + 1
        parts = [f"{len(p.bn_relu)} BatchNorm2d+ReLU fused"]
        if p.stem:
            parts.append(f"{p.stem}: no input gradient")
        if p.no_grad:
            parts.append(f"{', '.join(p.no_grad)}: nothing learns, no backward")
        if algs:
            parts.append("convolutions: " + ", ".join(f"{n} x{k}" for n, k in sorted(algs.items())))
        if p.note:
            parts.append(p.note)
        return head + ": " + "; ".join(parts) + ")"


def compile(model, *, input_grad=True, fusions=FUSIONS, input_shape=None):  # noqa: A001
    """The fast path for ``model``: a :class:`CompiledModel` sharing its Parameters and buffers.

    ``input_grad=False``: no gradient of the data (backward then returns None),
    as PyTorch does for an input that does not require grad; the first
    convolution skips dX, or, after layers that learn nothing, the first one
    after them, and those get no backward (fast/plan.py); the trainer uses it.
    ``fusions`` picks from :data:`FUSIONS` (``()`` for none). ``input_shape``
    (H, W, C) traces the model now rather than at the first forward.
    """
    return CompiledModel(model, input_grad=input_grad, fusions=fusions, input_shape=input_shape)
