"""The ``Optimizer`` base class: parameter bookkeeping, scratch space, state dicts.

An optimizer holds a list of ``Parameter`` objects (one "parameter group", in
PyTorch's words) and, per parameter, a few state arrays (a momentum buffer,
Adam's moment estimates). ``step()`` reads ``p.grad`` and updates ``p.data``
*in place*; it never changes ``p.grad``. It skips a frozen parameter
(``p.requires_grad = False``) and one whose gradient is None (``p.grad = None``,
``zero_grad(set_to_none=True)``: what PyTorch does), and gives one with ``p.lr_scale != 1`` the
learning rate ``lr * lr_scale`` and weight decay ``weight_decay / lr_scale``
(see ``Parameter``): what PyTorch does with parameter groups.

Per-step work is written with in-place numpy operations (``out=`` arguments)
into two scratch buffers shared by all parameters, so a step allocates no new
parameter-sized arrays (only the state arrays, once, on the first step).

Checkpoints
-----------
``state_dict()`` returns a *flat* ``{str: np.ndarray}`` that ``np.savez`` can
write directly (no pickling); scalars are 0-d arrays::

    "lr"                      float64   current learning rate
    "step"                    int64     number of step() calls so far
    "num_params"              int64     length of the parameter list
    "<hyperparameter>"        0-d       e.g. "momentum", "beta1", "eps", ...
    "state.<i>.<buffer>"      array     e.g. "state.3.momentum_buffer",
                                        "state.3.exp_avg"; <i> is the position
                                        of the parameter in the list given to
                                        the constructor (= model.parameters())
    "no_state"                int64 (k,) only when some parameters took no
                                        step yet (their grad was always None):
                                        their positions, so that a load can
                                        tell them from lost state arrays

``load_state_dict(d)`` checks everything (missing/unexpected keys, shapes,
hyperparameter values) before writing anything, so a failed load leaves the
optimizer untouched; on success the run continues bit-identically. As in
PyTorch, the hyperparameters stored in the checkpoint replace the ones given
to the constructor.
"""
import re

import numpy as np

from ..nn.module import Parameter, zero_grads

_STATE_KEY = re.compile(r"^state\.(\d+)\.([A-Za-z_][A-Za-z0-9_]*)$")


def _check_lr(owner, lr):
    try:
        lr = float(lr)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: lr must be a real number, got {type(lr).__name__}") from None
    if not lr >= 0.0:  # also rejects NaN
        raise ValueError(f"{owner}: invalid learning rate {lr!r} (must be >= 0)")
    return lr


class Optimizer:
    """Base class. Subclasses set the two class attributes below and implement
    ``_validate(hyper)`` and ``step()``.

    ``hyperparameters``: names of the scalar settings saved in ``state_dict()``
    (besides ``lr``), each stored as an attribute of the same name.
    ``state_names``: names of the per-parameter state arrays.
    """

    hyperparameters = ()
    state_names = ()

    def __init__(self, params, lr):
        name = type(self).__name__
        if isinstance(params, Parameter):
            raise TypeError(f"{name}: params must be an iterable of Parameters "
                            "(e.g. model.parameters()), got a single Parameter")
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"{name}: params must be an iterable of Parameters "
                            f"(e.g. model.parameters()), got {type(params).__name__}") from None
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        seen = set()
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: params[{i}] is a {type(p).__name__}, expected a "
                                "Parameter (pass model.parameters())")
            if np.asarray(p.data).dtype.kind != "f":
                raise TypeError(f"{name}: params[{i}] has dtype {p.data.dtype}; only floating "
                                "point parameters can be optimised")
            if id(p) in seen:
                raise ValueError(f"{name}: params[{i}] appears more than once in the parameter "
                                 "list (it would be updated twice per step)")
            seen.add(id(p))
        self.params = params
        self.lr = _check_lr(name, lr)
        self.step_count = 0
        # state[i] maps a state name to the array for params[i]; filled lazily.
        self.state = [dict() for _ in params]
        self._scratch = {}

    # ------------------------------------------------------------- utilities
    def _updates(self, lr, weight_decay):
        """(i, p, lr_i, weight_decay_i) for every parameter that takes a step: frozen ones
        and those whose gradient is None (``p.grad = None``, as PyTorch) are skipped, and
        ``lr_scale`` scales the rate but not the decay per step."""
        for i, p in enumerate(self.params):
            if not p.requires_grad or p.grad_is_none:
                continue
            s = float(p.lr_scale)
            yield i, p, lr * s, (weight_decay / s if s != 0.0 else 0.0)

    def zero_grad(self, set_to_none=False):
        """Set every parameter's gradient to zero (in place), or to None (see Parameter)."""
        zero_grads(self.params, set_to_none)

    def _tmp(self, data, k):
        """Scratch array ``k`` (0 or 1) with the shape and dtype of ``data``.

        One flat buffer per (dtype, k) is shared by all parameters and sized to
        the largest one, so a step allocates no parameter-sized arrays.
        """
        key = (data.dtype, k)
        buf = self._scratch.get(key)
        n = data.size
        if buf is None or buf.size < n:
            n_max = max(n, max(p.data.size for p in self.params))
            buf = np.empty(n_max, dtype=data.dtype)
            self._scratch[key] = buf
        return buf[:n].reshape(data.shape)

    def _buffer(self, i, name, data, like=None):
        """The state array ``name`` of parameter ``i``, created on first use as
        zeros (or a copy of ``like``); recast if the parameter's dtype changed."""
        st = self.state[i]
        buf = st.get(name)
        if buf is None or buf.shape != data.shape:
            if like is None:
                buf = np.zeros(data.shape, dtype=data.dtype)
            else:
                buf = np.array(like, dtype=data.dtype, copy=True)
            st[name] = buf
        elif buf.dtype != data.dtype:  # e.g. model.to(np.float64) after creation
            buf = buf.astype(data.dtype)
            st[name] = buf
        return buf

    def _validate(self, hyper):
        """Check hyperparameter values; return them normalised. Overridden."""
        return dict(hyper)

    def _state_required(self, hyper, step):
        """Whether every parameter must have all its state arrays (on load)."""
        return step > 0 and bool(self.state_names)

    def _hyper(self):
        """The current hyperparameters as ``{name: python scalar}``."""
        return {h: getattr(self, h) for h in self.hyperparameters}

    def _set_hyper(self, hyper):
        for h, v in hyper.items():
            setattr(self, h, v)

    def step(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement step")

    # ------------------------------------------------------------ state dict
    def state_dict(self):
        """A flat ``{str: np.ndarray}`` snapshot (copies); see the module docstring."""
        out = {
            "lr": np.array(float(self.lr), dtype=np.float64),
            "step": np.array(self.step_count, dtype=np.int64),
            "num_params": np.array(len(self.params), dtype=np.int64),
        }
        for h, v in self._hyper().items():
            out[h] = np.array(v)
        for i, st in enumerate(self.state):
            for sname in self.state_names:
                if sname in st:
                    out[f"state.{i}.{sname}"] = st[sname].copy()
        if self._state_required(self._hyper(), self.step_count):
            idle = [i for i, st in enumerate(self.state) if not st and self.params[i].requires_grad]
            if idle:
                out["no_state"] = np.array(idle, dtype=np.int64)
        return out

    def load_state_dict(self, state_dict):
        """Restore a snapshot made by ``state_dict()`` (possibly via np.savez/np.load).

        Everything is validated first; on any problem a ``ValueError`` lists
        all of them and the optimizer is left unchanged. State arrays are
        copied and cast to each parameter's dtype.
        """
        name = type(self).__name__
        given = {str(k): np.asarray(v) for k, v in dict(state_dict).items()}
        scalar_keys = ("lr", "step", "num_params") + tuple(self.hyperparameters)
        problems = []

        missing = [k for k in scalar_keys if k not in given]
        if missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        not_scalar = [f"{k} (shape {given[k].shape})" for k in scalar_keys
                      if k in given and given[k].ndim != 0]
        if not_scalar:
            problems.append(f"expected 0-d arrays for: {', '.join(not_scalar)}")

        n = len(self.params)
        if "num_params" in given and given["num_params"].ndim == 0:
            try:
                n_saved = int(given["num_params"])
            except (TypeError, ValueError):
                n_saved = None
            if n_saved != n:
                problems.append(f"checkpoint is for {n_saved} parameters, "
                                f"this optimizer has {n}")

        new_state = [dict() for _ in range(n)]
        unexpected, misshaped = [], []
        idle = set()
        if "no_state" in given:
            v = given["no_state"]
            if v.ndim != 1 or v.dtype.kind not in "iu" or (
                    v.size and not 0 <= v.min() <= v.max() < n):
                problems.append(f"no_state must list parameter positions below {n}, got {v!r}")
            else:
                idle = set(v.tolist())
        for k, v in given.items():
            if k in scalar_keys or k == "no_state":
                continue
            m = _STATE_KEY.match(k)
            if m is None or m.group(2) not in self.state_names or int(m.group(1)) >= n:
                unexpected.append(k)
                continue
            i, sname = int(m.group(1)), m.group(2)
            data = self.params[i].data
            if v.shape != data.shape:
                misshaped.append(f"{k}: expected {data.shape}, got {v.shape}")
                continue
            new_state[i][sname] = v
        if unexpected:
            problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        if misshaped:
            problems.append(f"mis-shaped keys ({len(misshaped)}): {'; '.join(misshaped)}")

        hyper = step = lr = None
        if not missing and not not_scalar:
            try:
                lr = _check_lr(name, given["lr"])
                step = int(given["step"])
                if step < 0:
                    raise ValueError(f"{name}: step must be >= 0, got {step}")
                hyper = self._validate({h: given[h].item() for h in self.hyperparameters})
            except (TypeError, ValueError) as e:
                problems.append(f"invalid values: {e}")
        if hyper is not None and self._state_required(hyper, step):
            absent = [f"state.{i}.{s}" for i in range(n) for s in self.state_names
                      if f"state.{i}.{s}" not in given and self.params[i].requires_grad
                      and i not in idle]
            if absent:
                shown = ", ".join(absent[:10]) + (" ..." if len(absent) > 10 else "")
                problems.append(f"step={step} but state arrays are missing "
                                f"({len(absent)}): {shown}")

        if problems:
            raise ValueError(f"{name}.load_state_dict: nothing was loaded; "
                             + " | ".join(problems))

        # Everything checked: now commit.
        for i, st in enumerate(new_state):
            dtype = self.params[i].data.dtype
            new_state[i] = {s: np.array(v, dtype=dtype, copy=True) for s, v in st.items()}
        self.lr = lr
        self.step_count = step
        self._set_hyper(hyper)
        self.state = new_state

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in {"lr": self.lr, **self._hyper()}.items())
        return f"{type(self).__name__}({len(self.params)} parameters, {settings})"
