"""Parameter, Module and the containers every layer is built from.

A ``Module`` here has no autograd tape. Each layer writes its own
``forward(x)``, which caches whatever the backward pass will need, and its own
``backward(grad_out) -> grad_in``, which *adds* the gradients of its
parameters into ``Parameter.grad`` (exactly like ``loss.backward()`` in
PyTorch accumulates) and returns the gradient with respect to its input.

Layout convention (see docs/conventions.md):

* activations are NHWC: ``(batch, height, width, channels)``;
* parameters keep PyTorch's shapes: a convolution weight is
  ``(out_channels, in_channels, kh, kw)``, a linear weight ``(out, in)``, and
  ``state_dict()`` uses PyTorch's key names, so weights move both ways.
"""
from collections import OrderedDict

import numpy as np


class Parameter:
    """A learnable array and its gradient.

    ``data`` and ``grad`` are plain numpy arrays of the same shape and dtype.
    ``grad`` starts at zero; ``backward`` passes add into it and
    ``Module.zero_grad()`` resets it.

    ``p.grad = None`` is accepted, as in PyTorch (``zero_grad(set_to_none=True)``
    does it for every parameter): the optimizers then skip the parameter (no update,
    no weight decay, its state unchanged), and the next ``backward`` allocates a
    fresh zero gradient to add into -- reading ``p.grad`` does that, so ``p.grad +=
    g`` always works. To ask whether a gradient is there without allocating one,
    use ``p.grad_is_none`` (``p.grad is None`` is never true here). Any other value
    must be an array of the parameter's shape and dtype.

    Two settings for the optimizers (neither is saved in ``state_dict``; the
    model or the training recipe sets them when it is built):

    * ``requires_grad = False`` freezes the parameter, as in PyTorch: the
      optimizers leave it unchanged (no update, no weight decay, no state).
    * ``lr_scale`` (default 1) multiplies the learning rate of this one
      parameter but not its weight decay: an optimizer uses ``lr * lr_scale``
      and ``weight_decay / lr_scale``, so the decay per step, ``lr *
      weight_decay * p``, stays that of the other parameters (PyTorch: a
      parameter group with those two values).
    """

    def __init__(self, data):
        self.data = np.asarray(data)
        self._grad = np.zeros_like(self.data)
        self.requires_grad = True
        self.lr_scale = 1.0

    @property
    def grad(self):
        """The gradient; a fresh zero array (kept) when it was set to None."""
        if self._grad is None:
            self._grad = np.zeros_like(self.data)
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, np.ndarray):
                raise TypeError(f"Parameter.grad must be None or a numpy array, got "
                                f"{type(value).__name__}")
            if value.shape != self.data.shape or value.dtype != self.data.dtype:
                raise ValueError(f"Parameter.grad must have the parameter's shape "
                                 f"{self.data.shape} and dtype {self.data.dtype}, got "
                                 f"{value.shape} {value.dtype}")
        self._grad = value

    @property
    def grad_is_none(self):
        """True after ``p.grad = None`` until something reads or writes ``p.grad``."""
        return self._grad is None

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


def zero_grads(params, set_to_none=False):
    """``zero_grad`` of Module and Optimizer: each gradient to zero in place, or to None.
    A gradient that is None stays None."""
    for p in params:
        if set_to_none:
            p.grad = None
        elif not p.grad_is_none:
            p.grad[...] = 0


class Module:
    """Base class of every layer and model.

    Subclasses implement ``forward(x)`` and ``backward(grad_out)``. Assigning a
    ``Parameter`` or a ``Module`` to an attribute registers it, in assignment
    order, so ``named_parameters()`` and ``state_dict()`` produce PyTorch's
    dotted names (``layer2.0.layer.0.0.weight``). Non-learnable state that
    belongs in ``state_dict()`` (BatchNorm's running statistics) is registered
    with ``register_buffer``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----------------------------------------------------------- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            object.__setattr__(self, name, np.asarray(value))  # a buffer stays registered
            return
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, array):
        """Register a non-learnable array saved in ``state_dict()``."""
        self._buffers[name] = None
        object.__setattr__(self, name, np.asarray(array))

    def add_module(self, name, module):
        setattr(self, name, module)

    # ------------------------------------------------------------- the passes
    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -------------------------------------------------------------- traversal
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def children(self):
        return iter(self._modules.values())

    def named_children(self):
        return iter(self._modules.items())

    def named_parameters(self, prefix=""):
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for mod_name, mod in self.named_modules(prefix):
            for name in mod._buffers:
                yield (f"{mod_name}.{name}" if mod_name else name), getattr(mod, name)

    def zero_grad(self, set_to_none=False):
        """Reset every parameter's gradient: to zero, in place (the default here), or
        with ``set_to_none=True`` to None (PyTorch's default), which frees the arrays
        until the next ``backward`` and makes the optimizers skip what it does not reach."""
        zero_grads(self.parameters(), set_to_none)

    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    # ---------------------------------------------------------------- dtype
    def to(self, dtype):
        """Cast every floating parameter and buffer to ``dtype`` (in place)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: expected a floating dtype, got {dtype}")
        for m in self.modules():
            for p in m._parameters.values():
                p.data = p.data.astype(dtype)
                p.grad = None if p.grad_is_none else p.grad.astype(dtype)
            for name in m._buffers:
                value = getattr(m, name)
                if value.dtype.kind == "f":
                    object.__setattr__(m, name, value.astype(dtype))
        return self

    # ------------------------------------------------------------ state dict
    def state_dict(self):
        """An ordered ``{name: array}`` of copies of every parameter and buffer.

        Names and shapes are PyTorch's, so ``torch_model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in ours.state_dict().items()})`` works.
        """
        out = OrderedDict()
        for mod_name, mod in self.named_modules():
            dot = f"{mod_name}." if mod_name else ""
            for name, p in mod._parameters.items():
                out[dot + name] = p.data.copy()
            for name in mod._buffers:
                out[dot + name] = np.array(getattr(mod, name), copy=True)
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` into this module's parameters and buffers.

        Everything is checked before anything is written: with ``strict=True``
        a missing or unexpected key, and in any mode a shape mismatch, raises
        a ``KeyError``/``ValueError`` listing every offending key, and the
        module is left untouched. Values are cast to each target's dtype.
        Returns ``(missing_keys, unexpected_keys)`` like PyTorch.
        """
        targets = OrderedDict()
        for mod_name, mod in self.named_modules():
            dot = f"{mod_name}." if mod_name else ""
            for name in mod._parameters:
                targets[dot + name] = (mod, name, True)
            for name in mod._buffers:
                targets[dot + name] = (mod, name, False)
        given = {k: np.asarray(v) for k, v in state_dict.items()}
        missing = [k for k in targets if k not in given]
        unexpected = [k for k in given if k not in targets]
        misshaped = []
        for k, (mod, name, is_param) in targets.items():
            if k in given:
                want = (mod._parameters[name].data if is_param else getattr(mod, name)).shape
                if given[k].shape != want:
                    misshaped.append(f"{k}: expected {want}, got {given[k].shape}")
        problems = []
        if strict and missing:
            problems.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        if misshaped:
            problems.append(f"mis-shaped keys ({len(misshaped)}): {'; '.join(misshaped)}")
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: nothing was loaded; "
                             + " | ".join(problems))
        for k, (mod, name, is_param) in targets.items():
            if k not in given:
                continue
            if is_param:
                np.copyto(mod._parameters[name].data, given[k], casting="unsafe")
            else:
                old = getattr(mod, name)
                object.__setattr__(mod, name, given[k].astype(old.dtype, copy=True))
        return missing, unexpected

    # ------------------------------------------------------------------ repr
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, child in self._modules.items():
                child_repr = repr(child).replace("\n", "\n  ")
                lines.append(f"  ({name}): {child_repr}")
            return "\n".join(lines) + "\n)"
        return lines[0] + ")"


class Chain(Module):
    """A module that applies its children in registration order; backward visits them in
    reverse, each child getting the gradient the child after it returned: the chain rule,
    written out. (The zoo's models write their ``forward`` and ``backward`` out instead,
    one line per layer.)
    """

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, grad_out):
        for m in reversed(self._modules.values()):
            grad_out = m.backward(grad_out)
        return grad_out


class Sequential(Chain):
    """Modules applied in order; children are named "0", "1", ... as in PyTorch."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} must be a Module, got {type(m).__name__}")
            self.add_module(str(i), m)

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Identity(Module):
    """y = x; the gradient passes through unchanged."""

    def forward(self, x):
        return x

    def backward(self, grad_out):
        return grad_out
