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
import numpy as np

from .models.blocks import ShortcutA
from .nn import Module
from .trace import RULES as LAYER_RULES
from .trace import Row, trace

__all__ = ["summary", "Summary", "Row"]


def _shortcut_a_rule(m, shape):
    n, h, w, c = shape
    if c != m.in_channels:
        raise ValueError(f"ShortcutA: expected {m.in_channels} channels, got {shape}")
    s = m.stride
    return (n, -(-h // s), -(-w // s), m.out_channels), 0, 0


RULES = {**LAYER_RULES, ShortcutA: _shortcut_a_rule}
"""The tracer's shape rules (minitorch_cnn.trace.RULES) and the zoo's ShortcutA."""


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
    notes = getattr(model, "fast_notes", None)    # compile(model): the runner names what
    if notes is not None and not isinstance(model, Module):   # its fast path does per layer
        result = summary(model.model, input_shape, exact=exact)
        column = notes(result.input_shape[1:])
        for r in result.rows:
            r.fast = column.get(r.name, "")
        return result
    if not isinstance(model, Module):
        raise TypeError(f"summary: expected a minitorch_cnn Module or compile(model), "
                        f"got {type(model).__name__}")
    rows, output_source = trace(model, shape, exact=exact, rules=RULES)
    return Summary(model, shape, rows, output_source)
