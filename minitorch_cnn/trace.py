"""The data flow of a model's forward, traced on shapes: which call read which output.

:func:`trace` runs the model's own ``forward`` on a *shape-only* stand-in for
a batch: each leaf layer's forward is temporarily replaced by a rule that
computes its output shape and cost from its input shape; container modules
(Sequential, residual blocks, whole models) run their real forward code. It
records a :class:`Row` per leaf call and per residual addition written in
container code, each naming the rows whose outputs it read. ``summary``
turns the rows into a table; the fast path (``fast/plan.py``) reads the data
flow to decide its fusions. This module depends on ``nn`` only.

``exact=True`` runs the real forward on zeros instead; leaf layers without a
rule always run for real. The model's training flags, running statistics
and cached activations are restored afterwards.
"""
from dataclasses import dataclass

import numpy as np

from .nn import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Flatten, Identity, Linear,
                 MaxPool2d, ReLU)
from .nn.module import Sequential

__all__ = ["trace", "Row", "RULES"]


@dataclass
class Row:
    """One line of the table: a leaf layer, or a residual addition (``type == "add"``).

    ``inputs`` is the data flow: the indices (in ``Summary.rows``) of the rows
    whose outputs this row read, -1 for the model's input, None for a constant.
    ``fast`` says what the compiled fast path does there (filled in by ``summary`` for a
    compiled model).
    """
    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int
    elementwise: int
    inputs: tuple = ()
    fast: str = ""


class _Shape:
    """A stand-in activation: a shape and a dtype, no data. Supports ``a + b`` (residual adds)."""

    __array_ufunc__ = None  # keep numpy from treating it as an object scalar

    def __init__(self, shape, dtype, tracer, source=-1):
        self.shape, self.dtype, self._tracer = tuple(int(s) for s in shape), np.dtype(dtype), tracer
        self.source = source   # the row that produced it (-1: the model's input)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape))

    def __add__(self, other):
        shape = np.broadcast_shapes(self.shape, np.shape(other) if not isinstance(other, _Shape)
                                    else other.shape)
        source = self._tracer.record_add(shape, (self, other))
        return _Shape(shape, self.dtype, self._tracer, source)

    __radd__ = __add__

    def __repr__(self):
        return f"_Shape{self.shape}"


class _Tracked(np.ndarray):
    """A real activation passed between layers in ``exact`` mode; ``a + b`` is recorded.

    Leaf layers receive plain arrays (so the additions inside them are not
    recorded); only the additions written in container code are.
    """

    def __add__(self, other):
        out = np.add(np.asarray(self), np.asarray(other))
        return self._tracer.track(out, self._tracer.record_add(out.shape, (self, other)))

    __radd__ = __add__


# ------------------------------------------------------------------ shape rules
def _window(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def _conv_rule(m, shape):
    if len(shape) != 4 or shape[-1] != m.in_channels:
        hint = " (NHWC expected: give the input as (H, W, C))" \
            if len(shape) == 4 and shape[1] == m.in_channels else ""
        raise ValueError(f"Conv2d: expected an (N, H, W, {m.in_channels}) input, got {shape}{hint}")
    n, h, w, c = shape
    (kh, kw), (sh, sw), (ph, pw) = m.kernel_size, m.stride, m.padding
    oh, ow = _window(h, kh, sh, ph), _window(w, kw, sw, pw)
    if oh < 1 or ow < 1:
        raise ValueError(f"Conv2d: kernel {m.kernel_size} does not fit the padded input {shape}")
    out = (n, oh, ow, m.out_channels)
    return out, n * oh * ow * m.out_channels * c * kh * kw, 0


def _linear_rule(m, shape):
    if len(shape) != 2 or shape[1] != m.in_features:
        raise ValueError(f"Linear: expected an (N, {m.in_features}) input, got {shape}")
    return (shape[0], m.out_features), shape[0] * m.in_features * m.out_features, 0


def _pool_rule(m, shape):
    n, h, w, c = shape
    (kh, kw), (sh, sw), (ph, pw) = m.kernel_size, m.stride, m.padding
    oh, ow = _window(h, kh, sh, ph), _window(w, kw, sw, pw)
    if oh < 1 or ow < 1:
        raise ValueError(f"{type(m).__name__}: kernel {m.kernel_size} does not fit the input {shape}")
    out = (n, oh, ow, c)
    return out, 0, int(np.prod(out)) * kh * kw


def _adaptive_rule(m, shape):
    n, h, w, c = shape
    out = (n, *m.output_size, c)
    return out, 0, n * h * w * c


def _same_rule(m, shape):
    return tuple(shape), 0, int(np.prod(shape))


def _flatten_rule(m, shape):
    out = tuple(shape) if len(shape) == 2 else (shape[0], int(np.prod(shape[1:])))
    return out, 0, 0


def _identity_rule(m, shape):
    return tuple(shape), 0, 0


RULES = {
    Conv2d: _conv_rule,
    Linear: _linear_rule,
    MaxPool2d: _pool_rule,
    AvgPool2d: _pool_rule,
    AdaptiveAvgPool2d: _adaptive_rule,
    BatchNorm2d: _same_rule,
    ReLU: _same_rule,
    Flatten: _flatten_rule,
    Identity: _identity_rule,
}
"""Leaf layer type -> rule(module, input_shape) -> (output_shape, MACs, elementwise ops).
Other leaf types are run for real on zeros (their MACs are then unknown and counted as 0)."""


def _rule_for(module, rules):
    for cls in type(module).__mro__:
        if cls in rules:
            return rules[cls]
    return None


# ----------------------------------------------------------------------- tracer
class _Tracer:
    def __init__(self, exact, rules):
        self.exact, self.rules = exact, rules
        self.rows = []
        self.stack = []   # names of the modules whose forward is running

    def track(self, array, source=-1):
        out = np.asarray(array).view(_Tracked)
        out._tracer, out.source = self, source
        return out

    def record_add(self, shape, operands):
        """Record a residual addition; returns its row index (the source of its result)."""
        parent = self.stack[-1] if self.stack else ""
        self.rows.append(Row(f"{parent}.add" if parent else "add", "add", tuple(shape), 0, 0,
                             int(np.prod(shape)), tuple(_source(v) for v in operands)))
        return len(self.rows) - 1

    def wrap(self, name, module, is_leaf):
        original = module.forward
        tracer = self

        def traced(x, *args, **kwargs):
            tracer.stack.append(name)
            try:
                if not is_leaf:
                    return original(x, *args, **kwargs)
                return tracer.leaf(name, module, original, x, *args, **kwargs)
            finally:
                tracer.stack.pop()

        return traced

    def leaf(self, name, module, original, x, *args, **kwargs):
        try:
            return self._leaf(name, module, original, x, *args, **kwargs)
        except ValueError as e:
            if str(e).startswith("summary: layer "):
                raise
            raise ValueError(f"summary: layer {name!r}: {e}") from None

    def _leaf(self, name, module, original, x, *args, **kwargs):
        rule = _rule_for(module, self.rules)
        params = sum(p.size for p in module._parameters.values() if p is not None)
        real = self.exact or rule is None
        if real:
            arr = np.zeros(x.shape, dtype=x.dtype) if isinstance(x, _Shape) else np.asarray(x)
            y = np.asarray(original(arr, *args, **kwargs))
            out_shape = tuple(y.shape)
            if rule is not None:
                expect, macs, elementwise = rule(module, tuple(arr.shape))
                if tuple(expect) != out_shape:  # pragma: no cover - a rule disagreeing with its layer
                    raise AssertionError(f"summary: rule for {type(module).__name__} gives {expect}, "
                                         f"the layer gives {out_shape}")
            else:
                macs, elementwise = 0, int(np.prod(out_shape))
            result = _Shape(out_shape, y.dtype, self) if isinstance(x, _Shape) else self.track(y)
        else:
            out_shape, macs, elementwise = rule(module, x.shape)
            result = _Shape(out_shape, x.dtype, self)
        result.source = len(self.rows)
        self.rows.append(Row(name, type(module).__name__, tuple(out_shape), int(params),
                             int(macs), int(elementwise), (_source(x),)))
        return result


def _source(value):
    """The row that produced a traced value (-1: the model's input; None: not traced)."""
    return getattr(value, "source", None)


def trace(model, shape, *, exact=False, rules=RULES):
    """Trace ``model`` on an input of ``shape`` (N, H, W, C): (rows, output_source).

    ``rules`` maps leaf layer types to shape rules (default :data:`RULES`);
    ``output_source`` is the row whose output the model returned (-1: its input).
    """
    params = model.parameters()
    dtype = params[0].dtype if params else np.float32
    tracer = _Tracer(exact, rules)
    modules = list(model.named_modules())
    saved_training = [(m, m.training) for _, m in modules]
    saved = [(m, k, m.__dict__[k]) for _, m in modules for k in ("_cache", "forward")
             if k in m.__dict__]                  # a forward patched onto an instance stays
    buffers = {k: np.array(v, copy=True) for k, v in model.named_buffers()}
    try:
        model.eval()  # no running-statistics updates, no batch-size constraint
        for name, m in modules:
            is_leaf = not m._modules and not isinstance(m, Sequential)
            object.__setattr__(m, "forward", tracer.wrap(name or type(m).__name__, m, is_leaf))
        x = tracer.track(np.zeros(shape, dtype=dtype)) if exact else _Shape(shape, dtype, tracer)
        output_source = _source(model(x))
    finally:
        for _, m in modules:
            m.__dict__.pop("forward", None)
        for m, k, value in saved:
            object.__setattr__(m, k, value)
        for m, flag in saved_training:
            object.__setattr__(m, "training", flag)
        model.load_state_dict(buffers, strict=False)
    return tracer.rows, output_source
