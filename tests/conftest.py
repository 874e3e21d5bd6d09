"""Shared fixtures: the optional PyTorch oracle, both kernel backends, seeded randomness.

* ``torch``   -- the torch module, or a skip that says how to install it; tests
  that do not ask for it run without PyTorch.
* ``backend`` -- runs a test once with the "numpy" and once with the "numba"
  kernels (restoring the previous backend afterwards), so the layer suite
  covers both. Until the Numba kernels exist "numba" falls back to NumPy;
  ``kernels.get_backend()`` then reports "numpy".
* ``rng``     -- a seeded numpy Generator, fresh for every test.

``python -m pytest tests --layer-errors`` prints, at the end, the largest
error each layer reached against PyTorch and against finite differences
(tests record them with the ``record_error`` fixture).
"""
import collections

import numpy as np
import pytest

from minitorch_cnn import kernels

TORCH_REASON = "PyTorch is not installed; parity tests need `pip install -e .[torch]`"

_ERRORS = collections.defaultdict(float)  # (layer, check) -> largest error seen


def pytest_addoption(parser):
    parser.addoption("--layer-errors", action="store_true", default=False,
                     help="print the largest parity/gradcheck error reached by each layer")


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors, 2 shared cores
    try:
        yield torch
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    previous = kernels.set_backend(request.param)
    try:
        yield request.param
    finally:
        kernels.set_backend(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def record_error():
    """record_error(layer, check, err): keep the largest error per (layer, check); returns err."""
    def record(layer, check, err):
        key = (layer, check)
        _ERRORS[key] = max(_ERRORS[key], float(err))
        return err
    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not config.getoption("--layer-errors") or not _ERRORS:
        return
    layers = sorted({layer for layer, _ in _ERRORS})
    checks = sorted({check for _, check in _ERRORS})
    write = terminalreporter.write_line
    write("")
    write("largest error per layer ('-': not measured)")
    width = max(len(layer) for layer in layers) + 2
    write("layer".ljust(width) + "".join(c.rjust(14) for c in checks))
    for layer in layers:
        cells = [f"{_ERRORS[(layer, c)]:.2e}" if (layer, c) in _ERRORS else "-" for c in checks]
        write(layer.ljust(width) + "".join(cell.rjust(14) for cell in cells))
