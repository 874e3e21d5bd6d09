"""What a student who wants marks without the work would write, as region bodies.

Each attack is (assignment, task, [region body, ...]): the bodies replace the
task's regions in a copy, in order. ``@MARKER@`` and ``@REFERENCE@`` are filled
in by :func:`plant` (a file the attack would create in the grading process, and
the reference package's folder on disk). tests/test_grader_attacks.py plants
them against the grader; the issue's record of today's grader used the same.
"""
import textwrap
from pathlib import Path

_FIND_CHANNEL = '''
import os, sys
_f = sys._getframe()
while _f is not None:                     # the pipe a grading child reports on, if any
    _conn = _f.f_locals.get("conn")
    if _conn is not None and hasattr(_conn, "send"):
        _conn.send(PAYLOAD)
        os._exit(0)
    _f = _f.f_back
'''

_ALL_PASSED = ("('ok', ([{'case': 'forged', 'result': 'everything', 'weight': 1.0, "
               "'passed': True, 'message': '', 'hidden': False}], []))")

ATTACKS = {
    # replace the grader's comparison functions (found in sys.modules), return y = x
    "patched comparison": ("layers", "relu", ['''
import sys
for _m in list(sys.modules.values()):
    if getattr(_m, "__name__", "").startswith("minitorch_cnn.assignments"):
        for _name in ("compare_result", "compare", "compare_value"):
            if hasattr(_m, _name):
                setattr(_m, _name, lambda *a, **k: (True, ""))
        if hasattr(_m, "close"):
            _m.close = lambda *a, **k: True
y = x
''', "return grad_out"]),
    # send "every check passed" on the channel the child reports on; or leave a verdict file
    "forged message": ("layers", "relu", [_FIND_CHANNEL.replace("PAYLOAD", _ALL_PASSED) + '''
for _name in ("verdict.json", "results.json", "checks.json"):
    with open(_name, "w") as _out:
        _out.write('{"passed": true, "score": 5, "checks": [{"passed": true}]}')
os._exit(0)
''', "return grad_out"]),
    # a pickle that runs code where it is unpickled (the grader), then claims full marks
    "pickled payload": ("layers", "relu", ['''
class _Payload:
    def __reduce__(self):
        return (eval, ("(open(@MARKER@, 'w').write('ran in the grader'), " + {passed!r} + ")[1]",))
'''.replace("{passed!r}", repr(_ALL_PASSED)) + _FIND_CHANNEL.replace("PAYLOAD", "_Payload()") + '''
import json
import numpy as np
_obj = np.empty(1, dtype=object)
_obj[0] = _Payload()
for _stem in ("outputs", "results"):
    np.savez(_stem + ".npz", **{"a0": _obj})
    with open(_stem + ".json", "w") as _out:
        json.dump({"cases": {}, "passed": True}, _out)
os._exit(0)
''', "return grad_out"]),
    # call the fast path's convolution, shipped with the copy
    "delegation to a shipped implementation": ("layers", "conv2d_backward", ['''
from minitorch_cnn.fast.im2col import Im2colGemm
_alg = Im2colGemm(cache.x_shape, self.weight.data.shape, self.stride, self.padding)
_dx, _dw = _alg.backward(grad_out, (cache.x_shape, cache.cols, cache.w_col), self.weight.data, True)
self.weight.grad += _dw
if self.bias is not None:
    self.bias.grad += grad_out.reshape(-1, self.out_channels).sum(axis=0)
return _dx
''']),
    # let an installed library do it: PyTorch, or the teacher's package through PYTHONPATH
    "delegation to an installed library": ("layers", "relu", ['''
import os, sys
try:
    import torch
    y = torch.relu(torch.from_numpy(x)).numpy()
except ImportError:
    sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(":") if p]
    for _name in [m for m in sys.modules if m.startswith("minitorch_cnn")]:
        del sys.modules[_name]
    from minitorch_cnn.nn.activation import ReLU as _ReLU
    y = _ReLU().forward(x)
''', "return grad_out"]),
    # read the reference's region from the teacher's package on disk and run it
    "reading the reference's source": ("layers", "conv2d_backward", ['''
import re, textwrap
_src = open(@REFERENCE@ + "/nn/conv.py").read()
_body = re.search(r"### BEGIN SOLUTION conv2d_backward\\n(.*?)\\n[ ]*### END SOLUTION", _src, re.S).group(1)
_ns = dict(globals(), self=self, cache=cache, grad_out=grad_out)
exec("def _f():\\n" + textwrap.indent(textwrap.dedent(_body), "    "), _ns)
return _ns["_f"]()
''']),
    # read the grader's own copy of the reference (on the package's path) and run it
    "reading the grader's copy of the reference": ("layers", "conv2d_backward", ['''
import os, re, sys, textwrap, marshal
_body = None
for _root in sys.modules["minitorch_cnn"].__path__:
    try:
        _src = open(os.path.join(_root, "nn", "conv.py")).read()
    except OSError:
        continue
    _m = re.search(r"### BEGIN SOLUTION conv2d_backward\\n(.*?)\\n[ ]*### END SOLUTION", _src, re.S)
    if _m and "cache.cols.T @ g" in _m.group(1):
        _body = _m.group(1)
_ns = dict(globals(), self=self, cache=cache, grad_out=grad_out)
exec("def _f():\\n" + textwrap.indent(textwrap.dedent(_body), "    "), _ns)
return _ns["_f"]()
''']),
    "infinite loop": ("layers", "relu", ["while True:\n    pass", "return grad_out"]),
    "memory bomb": ("layers", "relu", ['''
import numpy as np
_hog = []
while True:
    _hog.append(np.ones(1 << 23))         # 64 MB at a time, written
''', "return grad_out"]),
}


def plant(copy, name, marker, reference):
    """Write attack ``name`` into the task regions of the copy at ``copy`` (any markers)."""
    from minitorch_cnn.assignments import markers
    assignment, task, bodies = ATTACKS[name]
    bodies = [b.replace("@MARKER@", repr(str(marker))).replace("@REFERENCE@", repr(str(reference)))
              for b in bodies]
    for path in sorted((Path(copy) / "minitorch_cnn").rglob("*.py")):
        if "assignments" in path.parts:                  # its docstrings show markers
            continue
        text = path.read_text()
        regions = [r for kind in ("TASK", "SOLUTION", "GIVEN")
                   for r in markers.find_regions(text, kind) if r.task == task]
        if not regions:
            continue
        lines = text.splitlines(keepends=True)
        for r, body in sorted(zip(regions, bodies), key=lambda rb: -rb[0].begin):
            new = [r.indent + line + "\n" if line.strip() else "\n"
                   for line in textwrap.dedent(body).strip("\n").splitlines()]
            lines[r.begin + 1:r.end] = new
        path.write_text("".join(lines))
        return path
    raise LookupError(f"no region of {task} in {copy}")
