"""A per-layer table of output shapes, parameters and multiply-accumulates (MACs).

``summary(model, (224, 224, 3))`` runs the model's own ``forward`` on a
*shape-only* stand-in for a batch of one image: each leaf layer's forward is
temporarily replaced by a rule that computes its output shape and cost from
its input shape, so even ResNet-152 at 224x224 is summarised in milliseconds
with no arithmetic on arrays. Container modules (Sequential, residual
blocks, whole models) run their real forward code, so the table follows the
actual data flow -- the seed model's always-on ``make_equal_channel``
included -- and residual additions are recorded where they happen.

Counting convention (the paper's Table 1 "FLOPs", which are multiply-adds):

* Conv2d: ``OH * OW * out_channels * in_channels * kh * kw`` MACs per image;
* Linear: ``in_features * out_features``;
* bias additions, BatchNorm, ReLU, pooling and the residual additions are
  not MACs. They are reported separately as "elementwise ops" (one per
  output element; a pooling window counts its kh*kw reads), which the
  Table 1 convention leaves out.

``summary(..., exact=True)`` runs the real forward on zeros instead
(checking the rules against the layers' own shape arithmetic); layers the
rules do not know are always run for real. The model's training flags,
running statistics and cached activations are restored afterwards.
"""
from dataclasses import dataclass

import numpy as np

from .nn import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Flatten, Identity, Linear,
                 MaxPool2d, Module, ReLU)
from .models.blocks import ShortcutA
from .nn.module import Sequential

__all__ = ["summary", "Summary", "Row"]


@dataclass
class Row:
    """One line of the table: a leaf layer, or a residual addition (``type == "add"``).

    ``inputs`` is the data flow: the indices (in ``Summary.rows``) of the rows
    whose outputs this row read, -1 for the model's input, None for a constant.
    ``fast`` says what the compiled fast path does there (see minitorch_cnn.fast).
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


def _shortcut_a_rule(m, shape):
    n, h, w, c = shape
    if c != m.in_channels:
        raise ValueError(f"ShortcutA: expected {m.in_channels} channels, got {shape}")
    s = m.stride
    return (n, -(-h // s), -(-w // s), m.out_channels), 0, 0


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
    ShortcutA: _shortcut_a_rule,
}
"""Leaf layer type -> rule(module, input_shape) -> (output_shape, MACs, elementwise ops).
Other leaf types are run for real on zeros (their MACs are then unknown and counted as 0)."""


def _rule_for(module):
    for cls in type(module).__mro__:
        if cls in RULES:
            return RULES[cls]
    return None


# ----------------------------------------------------------------------- tracer
class _Tracer:
    def __init__(self, exact):
        self.exact = exact
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
        rule = _rule_for(module)
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


class Summary:
    """The result of :func:`summary`: ``rows`` and totals; ``str()`` is the table.

    Attributes: ``rows`` (list of :class:`Row` in execution order),
    ``input_shape`` (N, H, W, C), ``total_params`` (all of the model's
    parameters), ``total_macs`` (Conv2d + Linear), ``total_elementwise``.
    """

    def __init__(self, model, input_shape, rows, output_source=None):
        self.model_name = type(model).__name__
        self.output_source = output_source  # the row whose output the model returned
        self._types = {name: type(m).__name__ for name, m in model.named_modules()}
        self.input_shape = tuple(input_shape)
        self.rows = rows
        self.total_params = int(sum(p.size for p in model.parameters()))
        self.total_macs = int(sum(r.macs for r in rows))
        self.total_elementwise = int(sum(r.elementwise for r in rows))
        self.output_shape = rows[-1].output_shape if rows else self.input_shape

    def macs_of(self, pattern):
        """MACs of the rows whose name contains ``pattern`` (e.g. "make_equal_channel")."""
        return sum(r.macs for r in self.rows if pattern in r.name)

    def params_of(self, pattern):
        return sum(r.params for r in self.rows if pattern in r.name)

    def grouped(self, depth):
        """Rows merged by the first ``depth`` components of their names (``depth=1``: stages)."""
        groups = {}
        for r in self.rows:
            parts = r.name.split(".")
            key = ".".join(parts[:depth])
            g = groups.get(key)
            if g is None:
                kind = r.type if len(parts) <= depth else self._types.get(key, "")
                groups[key] = Row(key, kind, r.output_shape, r.params, r.macs, r.elementwise)
            else:
                g.output_shape = r.output_shape
                g.params += r.params
                g.macs += r.macs
                g.elementwise += r.elementwise
        return list(groups.values())

    def table(self, depth=None):
        rows = self.rows if depth is None else self.grouped(depth)
        fast = any(r.fast for r in rows)
        head = ("Layer", "Type", "Output (N, H, W, C)", "Params", "MACs") + (
            ("Fast path",) if fast else ())
        body = [(r.name, r.type, str(tuple(r.output_shape)), f"{r.params:,}", f"{r.macs:,}")
                + ((r.fast,) if fast else ()) for r in rows]
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
                  for i, h in enumerate(head)]

        def line(cells):
            return "  ".join(c.ljust(w) if i < 3 or i == 5 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        rule = "-" * len(line(head))
        out = [f"{self.model_name}, input {self.input_shape} (N, H, W, C)", rule, line(head), rule]
        out += [line(b) for b in body]
        out += [rule,
                f"Total parameters:   {self.total_params:,}",
                f"Total MACs:         {self.total_macs:,}  ({self.total_macs / 1e9:.3g} x 10^9; "
                f"Conv2d and Linear multiply-adds, Table 1's 'FLOPs')",
                f"Elementwise ops:    {self.total_elementwise:,}  (BatchNorm, ReLU, pooling, "
                f"residual adds; not in the MAC total)"]
        return "\n".join(out)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return (f"Summary({self.model_name}, input={self.input_shape}, params={self.total_params:,}, "
                f"macs={self.total_macs:,})")


def summary(model, input_shape, *, exact=False):
    """Trace ``model`` on one input of ``input_shape`` and return a :class:`Summary`.

    ``input_shape`` is one sample's NHWC shape ``(H, W, C)``, e.g.
    ``(224, 224, 3)``, or a full ``(N, H, W, C)``. ``exact=True`` runs the
    layers for real on zeros (slow for big inputs). ``print(summary(...))``
    shows the table; ``.total_params``, ``.total_macs`` hold the totals.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4:
        raise ValueError(f"summary: input_shape must be (H, W, C) or (N, H, W, C), got {input_shape}")
    from .fast import CompiledModel
    if isinstance(model, CompiledModel):           # the model's table, with the fast path's notes
        result = summary(model.model, input_shape, exact=exact)
        if model.plan is None:
            model.trace(result.input_shape[1:])
        twins = {name: model.plan.fast.get(m) for name, m in model.model.named_modules()}
        for r in result.rows:
            twin = twins.get(r.name)
            r.fast = twin.describe() if twin is not None else ""
        return result
    if not isinstance(model, Module):
        raise TypeError(f"summary: expected a minitorch_cnn Module or compile(model), "
                        f"got {type(model).__name__}")
    params = model.parameters()
    dtype = params[0].dtype if params else np.float32
    tracer = _Tracer(exact)

    modules = list(model.named_modules())
    saved_training = [(m, m.training) for _, m in modules]
    saved_state = [(m, dict(m.__dict__)) for _, m in modules]
    buffers = {k: np.array(v, copy=True) for k, v in model.named_buffers()}
    try:
        model.eval()  # no running-statistics updates, no batch-size constraint
        for name, m in modules:
            is_leaf = not m._modules and not isinstance(m, Sequential)
            object.__setattr__(m, "forward", tracer.wrap(name or type(m).__name__, m, is_leaf))
        x = tracer.track(np.zeros(shape, dtype=dtype)) if exact else _Shape(shape, dtype, tracer)
        output_source = _source(model(x))
    finally:
        for m, state in saved_state:
            m.__dict__.pop("forward", None)
            for key in ("_cache",):
                if key in state:
                    object.__setattr__(m, key, state[key])
        for m, flag in saved_training:
            object.__setattr__(m, "training", flag)
        model.load_state_dict(buffers, strict=False)
    return Summary(model, shape, tracer.rows, output_source)
