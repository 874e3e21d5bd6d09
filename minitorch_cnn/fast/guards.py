"""What keeps a compiled model and its model one truth: the runner's guards.

A :class:`~minitorch_cnn.fast.CompiledModel` plans from a trace of the model
(which layer gets which twin and fusion). The model stays an ordinary,
editable object, so before every call the runner compares a fingerprint of
it with the one it planned from, and re-plans when they differ:

* :func:`layout` is that fingerprint: every module of the tree in order (the
  objects themselves: a module replaced, added, removed or moved changes
  it), its class, each Parameter (the object, its shape, dtype and
  ``requires_grad``) and each Conv2d's kernel, stride and padding. It is a
  flat list compared with ``==``, a few microseconds a call;
  :func:`what_changed` names the difference, for the re-plan's reason or a
  refusal's message.
* :class:`RanOnFastPath` is what each module's own cache holds after a
  compiled forward: the model's own ``backward`` then fails at its first
  layer, before any gradient is added, instead of going back through an
  older plain forward's cache.
* :data:`LENDING` makes lending the twins one step: a layer that already
  has an instance ``forward`` (another runner's twin, in a nested call or
  another thread, or a patch of the user's) is refused, not overwritten.
"""
import threading

from ..nn import Conv2d

LENDING = threading.Lock()
"""Held while a runner checks and lends its twins (every runner, every thread)."""


class RanOnFastPath:
    """A layer's ``_cache`` after a compiled forward: not a cache its own backward can use.

    Reading anything from it (``check_grad`` reads ``out_shape`` first) raises a
    RuntimeError that says why; copying and pickling a model holding one work.
    """

    __slots__ = ("owner",)

    def __init__(self, owner):
        self.owner = owner

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError(
            f"backward of a forward that ran on the fast path (compile({self.owner})): "
            "call that runner's backward, or run the model's own forward before its backward")

    def __repr__(self):
        return f"RanOnFastPath({self.owner})"


def layout(model):
    """The fingerprint of ``model`` that a plan depends on (see the module docstring)."""
    out = []

    def walk(m):
        out.append(m)
        out.append(m.__class__)
        for p in m._parameters.values():
            out.append(p)
            if p is not None:
                out.extend((p.data.shape, p.data.dtype, p.requires_grad))
        if m.__class__ is Conv2d:
            out.extend((m.kernel_size, m.stride, m.padding))
        children = m._modules
        out.append(len(children))
        for c in children.values():
            walk(c)

    walk(model)
    return out


def described(model):
    """{module name: (module, {parameter name: (Parameter, shape, dtype, requires_grad)}, geometry)}:
    the named form of :func:`layout`, kept with a plan to say what changed."""
    out = {}
    for name, m in model.named_modules():
        params = {k: None if p is None else (p, p.data.shape, p.data.dtype, p.requires_grad)
                  for k, p in m._parameters.items()}
        geometry = (m.kernel_size, m.stride, m.padding) if type(m) is Conv2d else None
        out[name or "(the model)"] = (m, params, geometry)
    return out


def what_changed(old, new, limit=4):
    """What differs between two :func:`described` forms, in words ('' when nothing does)."""
    diffs = []
    for name, (m, params, geometry) in new.items():
        if name not in old:
            diffs.append(f"{name} ({type(m).__name__}) added")
            continue
        m0, params0, geometry0 = old[name]
        if m0 is not m:
            diffs.append(f"{name} replaced ({type(m0).__name__} -> {type(m).__name__})")
            continue
        for k in params0.keys() | params.keys():
            a, b = params0.get(k), params.get(k)
            if a is None or b is None or a[0] is not b[0]:
                if a is not None or b is not None:
                    diffs.append(f"{name}.{k} {'replaced' if a and b else 'added' if b else 'removed'}")
            elif a[1:3] != b[1:3]:
                diffs.append(f"{name}.{k} {a[1]} {a[2]} -> {b[1]} {b[2]}")
            elif a[3] != b[3]:
                diffs.append(f"{name}.{k}.requires_grad {a[3]} -> {b[3]}")
        if geometry0 != geometry:
            diffs.append(f"{name} kernel/stride/padding {geometry0} -> {geometry}")
    diffs += [f"{name} ({type(m).__name__}) removed" for name, (m, _, _) in old.items()
              if name not in new]
    if not diffs:
        diffs.append("the module tree changed (order or classes)")
    more = f" and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return "; ".join(diffs[:limit]) + more
