"""``python -m minitorch_cnn COMMAND ...``: see :mod:`minitorch_cnn.cli`."""
import sys

from .cli import main

sys.exit(main())
