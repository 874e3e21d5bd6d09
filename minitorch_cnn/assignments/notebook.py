"""Jupyter notebooks from "percent" scripts (``# %%`` cells), as jupytext reads them.

A small converter of its own, so ``assignment make`` needs no extra package:
``# %%`` starts a code cell, ``# %% [markdown]`` a Markdown cell whose lines
lose their leading ``# ``; cell metadata in the header (``# %% nbgrader={...}``
or ``tags=["x"]``) is parsed as JSON; a leading ``# ---`` ... ``# ---`` YAML
header is dropped. tests/test_assignments_notebooks.py checks that jupytext
reads the same cells.
"""
import json
import re
from pathlib import Path

_HEADER = re.compile(r"^# %%(?P<rest>.*)$")
_META = re.compile(r"(\w+)=(\{.*?\}|\[.*?\]|\"[^\"]*\")(?=\s+\w+=|\s*$)")


def parse_cells(text):
    """[(cell_type, source, metadata)] of a percent script."""
    lines = text.splitlines()
    if lines and lines[0].strip() == "# ---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "# ---"), None)
        if end is not None:
            lines = lines[end + 1:]
    cells, current = [], None
    for line in lines:
        m = _HEADER.match(line)
        if m:
            if current is not None:
                cells.append(current)
            rest = m["rest"].strip()
            kind = "code"
            if rest.startswith("[markdown]") or rest.startswith("[md]"):
                kind, rest = "markdown", rest.split("]", 1)[1].strip()
            meta = {k: json.loads(v) for k, v in _META.findall(rest)}
            current = (kind, [], meta)
        elif current is not None:
            current[1].append(line)
        elif line.strip():
            current = ("code", [line], {})
    if current is not None:
        cells.append(current)
    out = []
    for kind, body, meta in cells:
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        if kind == "markdown":
            body = [b[2:] if b.startswith("# ") else b[1:] if b.startswith("#") else b for b in body]
        out.append((kind, "\n".join(body), meta))
    return out


def to_notebook(text, first_markdown=None):
    """An nbformat-4 notebook (a dict) of the percent script ``text``.

    ``first_markdown`` (e.g. an "Open in Colab" line) becomes the first cell.
    """
    cells = []
    if first_markdown:
        cells.append(("markdown", first_markdown, {}))
    cells.extend(parse_cells(text))
    nb_cells = []
    for i, (kind, source, meta) in enumerate(cells):
        cell = {"cell_type": kind, "id": f"cell-{i}", "metadata": meta, "source": _lines(source)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        nb_cells.append(cell)
    return {"cells": nb_cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"},
                         "language_info": {"name": "python"}}}


def _lines(source):
    parts = source.split("\n")
    return [p + "\n" for p in parts[:-1]] + [parts[-1]] if parts != [""] else []


def colab_line(path, repo=None, branch="main"):
    """The "Open in Colab" line of a notebook at ``path`` (repository-relative)."""
    if repo:
        url = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{path}"
        return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                f"({url}) — on Colab, run `!pip install minitorch_cnn` first.")
    return ("Open in Colab: upload this notebook at <https://colab.research.google.com/> "
            "(File → Upload notebook) and run `!pip install minitorch_cnn` first; "
            "`assignment notebooks --colab-repo OWNER/REPO` writes a one-click link.")


def convert(script, out_dir, repo=None, rel_dir="notebooks"):
    """Write ``out_dir/<script stem>.ipynb``; returns its path."""
    script, out_dir = Path(script), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / (script.stem + ".ipynb")
    nb = to_notebook(script.read_text(), colab_line(f"{rel_dir}/{target.name}", repo))
    target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return target
