"""What to fuse, found by tracing what the model's forward actually does.

:func:`make_plan` runs ``minitorch_cnn.trace``, the shape-only trace of the
model's own forward (every container's real code; each leaf layer replaced
by its shape rule), which records, for every leaf call and every residual
addition, which earlier call produced its input. From that data flow:

* **BatchNorm2d + ReLU**: a ReLU whose input is the output of a BatchNorm2d
  that nothing else reads; the BatchNorm applies the ReLU in its own pass
  over memory (and its mask in backward), and the ReLU passes through;
* **no input gradient** (``input_grad=False``): no gradient is computed for
  what nothing learns from, as in PyTorch. From the model's input, follow the
  chain of layers that each read only the one before and learn nothing (every
  Parameter frozen: FastNet's whitening stem once its bias stops learning); the
  first Conv2d whose input lies on that chain (the one reading the data, or the
  first after the frozen layers) skips dX, and the frozen layers before it get
  no gradient at all (:class:`NoGradient`).

A layer called more than once, or of a subclass (which may change the
maths), is never fused. If the trace fails (a container doing something
other than calling layers and adding their outputs), nothing is fused and
the plan says why; every layer still runs its fast twin, which is exact.
"""
from collections import Counter, defaultdict

from ..nn import GELU, BatchNorm2d, Conv2d, ReLU
from ..trace import trace
from .conv import FastConv2d
from .layers import FastBatchNorm2d, FastGELU, FastReLU

TWINS = (Conv2d, BatchNorm2d, ReLU, GELU)
"""The teaching layers that have a fast twin (the others run their own code)."""

FUSIONS = ("bn_relu",)
"""The fusions :func:`minitorch_cnn.compile` applies by default. (A Conv2d bias folded into
the BatchNorm2d after it was measured, and removed, in issue 23: docs/fast_path.md.)"""


class Plan:
    """The result of :func:`make_plan`: ``fast`` maps each teaching layer to its fast twin.

    ``bn_relu`` lists the fused pairs by module name,
    ``stem`` the name of the convolution that skips its input gradient (or
    None), ``no_grad`` the names of the frozen layers before it,
    ``rows`` the traced rows (minitorch_cnn.trace.Row), ``note`` why the trace failed.
    """

    def __init__(self, fast, bn_relu, stem, rows, note="", no_grad=()):
        self.fast, self.bn_relu, self.stem = fast, bn_relu, stem
        self.rows, self.note, self.no_grad = rows, note, list(no_grad)


class NoGradient:
    """A frozen layer before ``plan.stem``: it runs its twin's forward, and no gradient
    reaches it (the convolution after it skipped dX), so backward takes None and returns None."""

    def __init__(self, twin):
        self.twin, self.algorithms = twin, getattr(twin, "algorithms", {})

    def forward(self, x):
        return self.twin.forward(x)

    def backward(self, grad_out):
        if grad_out is not None:
            raise RuntimeError("NoGradient.backward: the fast plan found that no gradient "
                               f"reaches this layer, yet one came ({type(grad_out).__name__})")
        self.twin._cache = None
        return None

    def describe(self):
        return self.twin.describe() + "; nothing here or before it learns: no backward"


def make_plan(model, sample_shape, fusions=FUSIONS, input_grad=True):
    """Trace ``model`` on one input of ``sample_shape`` (H, W, C) and decide the fusions."""
    unknown = set(fusions) - set(FUSIONS)
    if unknown:
        raise ValueError(f"compile: unknown fusions {sorted(unknown)}; expected some of {FUSIONS}")
    modules = dict(model.named_modules())        # one {name: module} table per trace
    names = {id(m): name for name, m in modules.items()}
    if not model._modules:                       # a single layer: the trace names it by type
        modules[type(model).__name__] = model
    rows, output_source, note = [], None, ""
    try:
        rows, output_source = trace(model, (1,) + tuple(sample_shape))
    except Exception as e:  # noqa: BLE001 -- any failure means: trust no data flow
        note = f"not traced ({type(e).__name__}: {e}); nothing fused"
    bn_relu, stem, no_grad = _fusions(modules, rows, output_source, set(fusions), input_grad)
    fused_bn = {bn for bn, _ in bn_relu}
    fused_relu = {relu for _, relu in bn_relu}
    fast = {}
    for m in model.modules():
        if type(m) is Conv2d:
            fast[m] = FastConv2d(m, input_grad=m is not stem)
        elif type(m) is BatchNorm2d:
            fast[m] = FastBatchNorm2d(m, relu=m in fused_bn)
        elif type(m) is ReLU:
            fast[m] = FastReLU(m, fused=m in fused_relu)
        elif type(m) is GELU:
            fast[m] = FastGELU(m)

    for r in rows:                               # each convolution's algorithm, per traced shape
        m = modules.get(r.name)
        if type(m) is Conv2d and r.inputs[0] is not None:
            src = r.inputs[0]
            fast[m].algorithm((1,) + tuple(sample_shape) if src == -1 else rows[src].output_shape)
    for m in no_grad:
        fast[m] = NoGradient(fast[m])

    def named(pairs):
        return [(names[id(a)], names[id(b)]) for a, b in pairs]
    return Plan(fast, named(bn_relu), None if stem is None else names[id(stem)], rows, note,
                [names[id(m)] for m in no_grad])


def _fusions(modules, rows, output_source, fusions, input_grad):
    """(bn_relu pairs, stem conv, the frozen layers before it) of modules, from the traced rows;
    ``modules`` is the model's {name: module} (a single layer under its type's name)."""
    calls = Counter(r.name for r in rows if r.type != "add")
    readers = defaultdict(list)                  # row index (-1: the input) -> rows reading it
    for i, r in enumerate(rows):
        for source in r.inputs:
            readers[source].append(i)
    if output_source is not None:
        readers[output_source].append(None)      # the model's output is read by the caller

    def module(i):
        r = rows[i]
        return modules.get(r.name) if r.type != "add" and calls[r.name] == 1 else None

    def sole_reader(i):
        rd = readers[i]
        return module(rd[0]) if len(rd) == 1 and rd[0] is not None else None

    bn_relu = []
    for i in range(len(rows)):
        a, b = module(i), sole_reader(i)
        if "bn_relu" in fusions and type(a) is BatchNorm2d and type(b) is ReLU:
            bn_relu.append((a, b))
    stem, no_grad, chain, row = None, [], [], -1
    while not input_grad:                        # the chain from the data (see the docstring)
        m = sole_reader(row)
        if type(m) is Conv2d:
            stem, no_grad = m, list(chain)
        if type(m) not in TWINS or any(p.requires_grad for p in m.parameters()):
            break
        chain.append(m)
        row = readers[row][0]
    return bn_relu, stem, no_grad
