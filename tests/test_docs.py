"""The teaching pages in docs/: their code runs, their links hold.

* Every ```python block of a page (and of the top-level README) runs, in order, in one namespace per page,
  in a temporary working directory. A block preceded by ``<!-- skip -->``
  is shown but not run.
* Every relative link resolves: files and folders exist, ``#heading`` anchors
  of .md links exist, ``#L10-L20`` ranges lie inside the file, and a link whose
  text names a symbol (`Conv2d.backward`) or quotes code still points at it
  (docs/tools/relink.py; run it to refresh the line numbers after code moves).
* Every page and every example can be reached from docs/README.md.
* The docs site's sources hold too: the benchmark pages it shows have working
  links, each example's executed notebook (docs/examples/, what the site shows)
  matches its script, and the site maps every kind of link to a page or file.
"""
import importlib.util
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load_relink():
    spec = importlib.util.spec_from_file_location("relink", DOCS / "tools" / "relink.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


relink = _load_relink()
PAGES = relink.pages(DOCS)
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")


def python_blocks(page):
    """[(first line, source)] of the page's ```python blocks that are not marked <!-- skip -->."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start, j = m.group(2), i, i + 1
        while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        previous = next((lines[k].strip() for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        if lang == "python" and previous != "<!-- skip -->":
            blocks.append((start + 2, textwrap.dedent("\n".join(lines[start + 1:j]))))
        i = j + 1
    return blocks


def test_there_are_pages():
    names = {p.relative_to(DOCS).as_posix() for p in PAGES}
    assert "README.md" in names and "conventions.md" in names


README = ROOT / "README.md"  # the front page's code must run too


@pytest.mark.parametrize("page", [p for p in PAGES + [README] if python_blocks(p)],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_code_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINITORCH_EXAMPLE_FAST", "1")
    namespace = {"__name__": "__doc_page__"}
    for line, source in python_blocks(page):
        code = compile(source, f"{page.relative_to(ROOT)}:{line}", "exec")
        exec(code, namespace)  # noqa: S102 -- running the documentation is the point


SITE_PAGES = [ROOT / "benchmarks" / "README.md", ROOT / "benchmarks" / "results" / "README.md"]


def test_links_to_source_lines_hold():
    problems = relink.check(PAGES + [README] + SITE_PAGES)
    assert not problems, "\n".join(problems)


def test_index_reaches_every_page_and_example():
    index = DOCS / "README.md"
    targets = {link.path for link in relink.links(index)}
    reached, frontier = {index}, [index]
    while frontier:  # pages reachable through links between pages
        page = frontier.pop()
        for link in relink.links(page):
            if link.path.suffix == ".md" and link.path.is_relative_to(DOCS) \
                    and link.path.exists() and link.path not in reached:
                reached.add(link.path)
                frontier.append(link.path)
                targets |= {lk.path for lk in relink.links(link.path)}
    missing = [p.relative_to(ROOT).as_posix() for p in PAGES if p not in reached]
    assert not missing, f"pages not reachable from docs/README.md: {missing}"
    examples = sorted((ROOT / "examples").glob("*.py"))
    unlinked = [e.name for e in examples if e.resolve() not in targets]
    assert not unlinked, f"examples not linked from the docs: {unlinked}"


def test_every_layer_page_ends_with_a_gradient_check():
    for page in sorted((DOCS / "layers").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        assert "## Check it yourself" in text, page.name
        tail = text.split("## Check it yourself", 1)[1]
        assert "```python" in tail, page.name


def test_relink_refreshes_moved_code(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text("import os\n\n\nclass A:\n    def run(self):\n        total = 1\n"
                   "        return total\n")
    page = tmp_path / "page.md"
    page.write_text("See [`A.run`](mod.py#L5-L7) and [`total = 1`](mod.py#L6).\n"
                    "```\n[`A.run`](mod.py#L99)\n```\n")
    assert relink.check([page]) == []
    src.write_text("import os\nimport sys\n\n\nclass A:\n    x = 0\n\n    def run(self):\n"
                   "        total = 1\n        return total\n")
    found = relink.check([page])
    assert len(found) == 2 and "A.run now starts at line 8" in found[0]
    assert "`total = 1` is not in lines 6-6" in found[1]
    changes = relink.relink(page)
    assert len(changes) == 2
    assert page.read_text().startswith("See [`A.run`](mod.py#L8-L10) and [`total = 1`](mod.py#L9).")
    assert "(mod.py#L99)" in page.read_text()  # links inside code fences are left alone
    assert relink.check([page]) == []
    page.write_text("[`B.run`](mod.py#L8) [x](nothere.py) [y](mod.py#L50) [z](page.md#nope)\n")
    found = "\n".join(relink.check([page]))
    assert "B.run is not defined" in found and "nothere.py does not exist" in found
    assert "outside mod.py" in found and "no heading #nope" in found
    page.write_text("[results](results/) <!-- pending -->\n[more](results/)\n")
    found = relink.check([page])
    assert len(found) == 1 and ":2:" in found[0]  # only the unmarked link to a missing path


def test_slugs_follow_github():
    assert relink.slug("Backward: col2im + two GEMMs") == "backward-col2im--two-gemms"
    assert relink.slug("Why `im2col`?") == "why-im2col"


def _load_tool(name):
    import sys
    sys.path.insert(0, str(DOCS / "tools"))
    try:
        spec = importlib.util.spec_from_file_location(name, DOCS / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(DOCS / "tools"))


def test_example_notebooks_match_their_scripts():
    """The site shows docs/examples/*.ipynb; a script edited since it was run is stale."""
    pytest.importorskip("jupytext", reason="comparing notebooks with scripts needs jupytext (the test extra)")
    freeze = _load_tool("freeze_examples")
    scripts = freeze.scripts()
    assert scripts
    stale = [freeze.frozen_path(s).relative_to(ROOT).as_posix() for s in scripts if freeze.is_stale(s)]
    assert not stale, f"stale: {stale}; re-run them with python docs/tools/freeze_examples.py"


def test_example_notebooks_show_output_and_pictures():
    import json
    for notebook in sorted((DOCS / "examples").glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
        assert not [o for o in outputs if o["output_type"] == "error"], notebook.name
        assert any(o["output_type"] == "stream" for o in outputs), f"{notebook.name} printed nothing"
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{notebook.name} shows no picture"


def test_site_maps_links_to_pages_and_files():
    pytest.importorskip("docutils", reason="the site's extension needs docutils (the docs extra)")
    site = _load_tool("sphinx_site")
    target = site.site_target
    # a page: left to MyST; a folder: its README; an example: its page
    assert target("docs/README.md", "conventions.md#activations-are-nhwc") is None
    assert target("docs/performance.md", "../benchmarks/") == ("../benchmarks/README.md", None)
    assert target("docs/README.md", "../examples/01_gradient_check.py") == ("examples/01_gradient_check.ipynb", None)
    # source lines: a highlighted copy of the file, the range kept
    assert target("docs/layers/conv2d.md", "../../minitorch_cnn/nn/conv.py#L55-L64") == \
        ("sitef:../../minitorch_cnn/nn/conv.py.html#L55-L64", "minitorch_cnn/nn/conv.py")
    assert target("docs/results.md", "../benchmarks/results/2026-12-01_airbench94_seed0_metrics.csv") == \
        ("site:../benchmarks/results/2026-12-01_airbench94_seed0_metrics.csv",
         "benchmarks/results/2026-12-01_airbench94_seed0_metrics.csv")
    text = "[a](x.md) ![pic](figures/results_seed_cifar10_curves.png) [`f`](../minitorch_cnn/viz.py#L1)"
    new, files = site.rewrite_links("docs/README.md", text)
    assert new == "[a](x.md) ![pic](figures/results_seed_cifar10_curves.png) " \
                  "[`f`](sitef:../minitorch_cnn/viz.py.html#L1)" and files == {"minitorch_cnn/viz.py"}
