"""Run the examples once and keep what they printed and drew, for the docs site.

The site shows every script of examples/ as a page with its code, its printed
output and its pictures. Running all seven takes minutes (04 trains a
network), too long for every build, so they are run by hand, with their
default settings, and kept as executed notebooks in docs/examples/, one per
script, which the site build renders without running anything:

    python docs/tools/freeze_examples.py          # re-run the examples whose notebook is stale
    python docs/tools/freeze_examples.py --all    # re-run all of them
    python docs/tools/freeze_examples.py --check  # only list the stale ones; exit 1 if any

(It needs the test extra, for jupytext, nbclient and ipykernel, and torch for 05.)

A notebook is stale when its cells differ from the script's (jupytext's
reading of the ``# %%`` cells); tests/test_docs.py fails then, naming this
command. The scripts run in order in one temporary folder, as a student runs
them (06 loads the network 04 trained), from a kernel whose working
directory is that folder, so that they print paths such as
``runs/examples/filters.png``. Each picture a cell saves with matplotlib's
``savefig`` is shown under that cell where it was saved; the line that
arranges it is not kept.
Relative links in the text are rewritten for the notebook's folder.
"""
import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FROZEN = ROOT / "docs" / "examples"

# Run first in the kernel, then dropped from the notebook: every PNG a cell saves is shown.
SHOW_SAVED = """\
import matplotlib.figure as _mf
from IPython.display import Image as _Image, display as _display
_savefig = _mf.Figure.savefig
def _savefig_and_show(self, fname, *args, **kwargs):
    result = _savefig(self, fname, *args, **kwargs)
    if isinstance(fname, (str, __import__("os").PathLike)) and str(fname).endswith(".png"):
        _display(_Image(filename=str(fname)))
    return result
_mf.Figure.savefig = _savefig_and_show
"""
LINK = re.compile(r"\]\((?![a-z]+:|#)([^)\s#]+)")


def scripts():
    return sorted(EXAMPLES.glob("[0-9][0-9]_*.py"))


def frozen_path(script):
    return FROZEN / (script.stem + ".ipynb")


def relocate_links(text):
    """Relative links written for examples/ rewritten for docs/examples/."""
    def move(m):
        target = (EXAMPLES / m.group(1)).resolve()
        return "](" + os.path.relpath(target, FROZEN).replace(os.sep, "/")
    return LINK.sub(move, text)


def expected_cells(script):
    """[(cell type, source)] of the script as the frozen notebook must hold it."""
    import jupytext
    nb = jupytext.read(script)
    return [(c.cell_type, relocate_links(c.source) if c.cell_type == "markdown" else c.source)
            for c in nb.cells]


def is_stale(script):
    path = frozen_path(script)
    if not path.exists():
        return True
    import nbformat
    nb = nbformat.read(path, as_version=4)
    return [(c.cell_type, c.source) for c in nb.cells] != expected_cells(script)


def freeze(todo, timeout=1800):
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    FROZEN.mkdir(parents=True, exist_ok=True)
    env_path = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    os.environ["PYTHONPATH"] = env_path       # the kernel imports this checkout's package
    os.environ.pop("MINITORCH_EXAMPLE_FAST", None)
    os.environ.pop("MINITORCH_EXAMPLE_OUT", None)
    with tempfile.TemporaryDirectory() as work:
        for script in scripts():              # in order: 06 needs what 04 wrote
            if script not in todo and not (script.name.startswith("04") and any(
                    s.name.startswith("06") for s in todo)):
                continue
            start = time.perf_counter()
            nb = jupytext.read(script)
            for cell, (_, source) in zip(nb.cells, expected_cells(script)):
                cell.source = source
            nb.cells.insert(0, nbformat.v4.new_code_cell(SHOW_SAVED))
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                         "language": "python"}
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": work}}).execute()
            nb.cells.pop(0)
            for cell in nb.cells:
                if cell.cell_type == "code":      # one block per run of printed lines
                    merged = []
                    for out in cell.outputs:
                        if merged and out.output_type == "stream" == merged[-1].output_type \
                                and out.name == merged[-1].name:
                            merged[-1].text += out.text
                        else:
                            merged.append(out)
                    cell.outputs = merged
                cell.metadata.pop("execution", None)
                cell.pop("id", None)
                if cell.cell_type == "code" and cell.execution_count:
                    cell.execution_count -= 1
                    for out in cell.outputs:
                        if "execution_count" in out:
                            out["execution_count"] -= 1
            nb.metadata.pop("jupytext", None)
            nb.nbformat_minor = 4                 # no cell ids: small, stable diffs
            if script in todo:
                nbformat.write(nb, frozen_path(script))
            print(f"{script.name}: {time.perf_counter() - start:.0f} s"
                  + ("" if script in todo else " (run for the next example only)"), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="examples to run (prefixes such as 04); default: the stale ones")
    parser.add_argument("--all", action="store_true", help="run every example")
    parser.add_argument("--check", action="store_true", help="only list stale notebooks; exit 1 if any")
    args = parser.parse_args(argv)
    every = scripts()
    if args.names:
        todo = [s for s in every if any(s.name.startswith(n) for n in args.names)]
    elif args.all:
        todo = every
    else:
        todo = [s for s in every if is_stale(s)]
    if args.check:
        for s in todo:
            print(f"stale: {frozen_path(s).relative_to(ROOT)} (run python docs/tools/freeze_examples.py)")
        return 1 if todo else 0
    if not todo:
        print("every notebook in docs/examples/ is up to date")
        return 0
    freeze(todo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
