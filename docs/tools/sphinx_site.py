"""The docs site's Sphinx extension: the repository's Markdown, served as it is written.

The pages stay plain GitHub Markdown (they read the same on GitHub and in an
editor); this extension makes them work as a site without editing them:

* **Links.** The site mirrors the repository (docs/layers/conv2d.md becomes
  docs/layers/conv2d.html), so a page's relative links keep their meaning:
  a link to a folder goes to its README.md; a link to an example script
  (examples/01_gradient_check.py) goes to that example's page; a link to any
  other Python file, line range included (conv.py#L55-L64), goes to a
  highlighted copy of the file (conv.py.html, one anchor per line, the range
  highlighted); a link to any other file (a CSV, a log) gets the file copied.
* **Math** is turned into MathML while building (``latex2mathml``), which
  browsers render natively: no script, nothing from the network.
* **Navigation** is made, not configured: the guide's pages in the order
  docs/README.md lists them, then every other page of docs/ (a new page shows
  up by itself; a row in docs/README.md's table places it), the examples,
  the benchmark results.
* **Examples** are the notebooks docs/tools/freeze_examples.py executed and
  kept in docs/examples/; each page links to its notebook and its script.
"""
import html
import os
import re
import shutil
import sys
from pathlib import Path

from docutils import nodes

TOOLS = Path(__file__).resolve().parent
DOCS = TOOLS.parent
ROOT = DOCS.parent
sys.path.insert(0, str(TOOLS))
import relink  # noqa: E402  (the link grammar the doc tests use)

EXAMPLE = re.compile(r"^examples/(\d\d_\w+)\.py$")
SECTIONS = [("Examples", "docs/examples/*.ipynb"),
            ("Benchmarks", ["benchmarks/README.md", "benchmarks/results/README.md"])]


# ------------------------------------------------------------------ links
def site_target(page, target):
    """The link to write on the site for a relative link of ``page`` (a repository
    path), or None to leave it alone (.md pages, which MyST resolves itself).
    Returns (new target, repository file the site must hold or None)."""
    path_part, _, anchor = target.partition("#")
    dest = (ROOT / page).parent / path_part
    try:
        rel = dest.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return None
    if dest.is_dir():
        if (dest / "README.md").exists():
            return path_part.rstrip("/") + "/README.md" + ("#" + anchor if anchor else ""), None
        return None
    if dest.suffix == ".md" or not dest.exists():
        return None
    m = EXAMPLE.match(rel)
    if m and not anchor and (DOCS / "examples" / f"{m.group(1)}.ipynb").exists():
        notebook = os.path.relpath(DOCS / "examples" / f"{m.group(1)}.ipynb", (ROOT / page).parent)
        return notebook.replace(os.sep, "/"), None
    if dest.suffix == ".py":
        url = path_part + ".html"
    else:
        url = path_part
    return ("sitef:" + url + "#" + anchor) if anchor else ("site:" + url), rel


def rewrite_links(page, text):
    """(text with its links rewritten for the site, {repository files it links to})."""
    found, out, last = set(), [], 0
    for link in relink.links(ROOT / page, text):
        bang = link.start - len(link.text) - 4         # ![text](target): Sphinx copies images
        if bang >= 0 and text[bang] == "!":
            continue
        new = site_target(page, link.target)
        if new is None:
            continue
        target, needed = new
        if needed:
            found.add(needed)
        out += [text[last:link.start], target]
        last = link.end
    return "".join(out) + text[last:], found


def on_source_read(app, docname, source):
    path = app.env.doc2path(docname, base=False)
    if str(path).endswith(".md"):
        source[0], _ = rewrite_links(Path(path).as_posix(), source[0])
    if docname == app.config.root_doc:
        source[0] += navigation(app)


# ------------------------------------------------------------------ navigation
def _docname(path):
    return Path(path).with_suffix("").as_posix()


def navigation(app):
    """Hidden toctrees appended to the front page: they make the sidebar."""
    found = set(app.env.found_docs)
    order = ["docs/README"]
    for link in relink.links(DOCS / "README.md"):
        name = _docname(link.path.relative_to(ROOT)) if link.path.is_relative_to(ROOT) else ""
        if link.path.suffix == ".md" and name in found and name not in order:
            order.append(name)
    order += sorted(d for d in found if d.startswith("docs/") and not d.startswith("docs/examples/")
                    and d not in order)
    trees = [("Guide", order)]
    for caption, pattern in SECTIONS:
        paths = sorted(ROOT.glob(pattern)) if isinstance(pattern, str) else [ROOT / p for p in pattern]
        trees.append((caption, [_docname(p.relative_to(ROOT)) for p in paths
                                if _docname(p.relative_to(ROOT)) in found]))
    text = ""
    for caption, names in trees:
        text += f"\n\n```{{toctree}}\n:hidden:\n:caption: {caption}\n\n" + "\n".join(names) + "\n```\n"
    return text


# ------------------------------------------------------------------ math as MathML
def _mathml(node, display):
    from latex2mathml.converter import convert
    from sphinx.util import logging
    latex = node.astext()
    try:
        return convert(latex, display="block" if display else "inline")
    except Exception as error:  # noqa: BLE001 -- any converter failure is reported, with the formula
        logging.getLogger(__name__).warning(f"math not converted to MathML: {latex!r} ({error})",
                                            location=node)
        return f"<code>{html.escape(latex)}</code>"


def visit_math(self, node):
    self.body.append(f'<span class="math">{_mathml(node, False)}</span>')
    raise nodes.SkipNode


def visit_math_block(self, node):
    self.body.append(f'<div class="math">{_mathml(node, True)}</div>')
    raise nodes.SkipNode


# ------------------------------------------------------------------ example pages
def on_doctree_read(app, doctree):
    m = re.match(r"^docs/examples/(\d\d_\w+)$", app.env.docname)
    if not m:
        return
    name = m.group(1)
    links = (f'<p class="example-downloads">Download this example: '
             f'<a href="{name}.ipynb" download>notebook (.ipynb, with its output)</a> · '
             f'<a href="../../examples/{name}.py" download>script (.py)</a>. '
             f'The output below is from <code>python docs/tools/freeze_examples.py</code>, '
             f'with the example\'s default settings.</p>')
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is not None:
        section.insert(1, nodes.raw("", links, format="html"))


# ------------------------------------------------------------------ files and source pages
SOURCE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} — minitorch_cnn source</title>
<link rel="icon" href="{root}_static/favicon.svg">
<style>
body {{ margin: 0; font-family: system-ui, sans-serif; color: #222; background: #fff; }}
header {{ padding: .6em 1em; border-bottom: 1px solid #ddd; background: #f8f9fb; position: sticky; top: 0; }}
header a {{ color: #2962ff; text-decoration: none; margin-right: 1em; }}
header code {{ font-size: 1em; }}
main {{ font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; padding: .5em 0; }}
.line {{ display: flex; white-space: pre; }}
.line > a {{ flex: 0 0 4.5em; text-align: right; padding-right: 1em; color: #999; text-decoration: none; user-select: none; }}
.line > a:hover {{ color: #2962ff; }}
.line:target, .line.hl {{ background: #fff3b0; }}
{style}
</style></head>
<body><header><a href="{home}">← minitorch_cnn</a><code>{name}</code>
<span style="color:#888">({count} lines; a link such as #L10-L20 highlights those lines)</span></header>
<main class="src">
{lines}
</main>
<script>
function mark() {{
  document.querySelectorAll('.hl').forEach(function (e) {{ e.classList.remove('hl'); }});
  var m = /^#L(\\d+)(?:-L(\\d+))?$/.exec(location.hash);
  if (!m) return;
  var a = +m[1], b = +(m[2] || m[1]);
  for (var i = a; i <= b; i++) {{
    var e = document.getElementById('L' + i);
    if (e) e.classList.add('hl');
  }}
  var first = document.getElementById('L' + a);
  if (first) first.scrollIntoView({{block: 'center'}});
}}
window.addEventListener('hashchange', mark);
mark();
</script>
</body></html>
"""


def source_page(rel, outdir):
    """Write outdir/rel.html: the file highlighted, one id per line (L1, L2, ...)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    code = (ROOT / rel).read_text(encoding="utf-8")
    formatter = HtmlFormatter(nowrap=True)
    body = highlight(code, PythonLexer(), formatter).splitlines()  # Pygments closes spans per line
    lines = "\n".join(f'<div class="line" id="L{i}"><a href="#L{i}">{i}</a><span>{text or " "}</span></div>'
                      for i, text in enumerate(body, start=1))
    depth = rel.count("/")
    out = outdir / (rel + ".html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(SOURCE_PAGE.format(name=html.escape(rel), root="../" * depth,
                                      home="../" * depth + "index.html",
                                      count=len(body), lines=lines,
                                      style=formatter.get_style_defs(".src")), encoding="utf-8")


def on_build_finished(app, exception):
    if app.builder.name != "html":
        return
    outdir = Path(app.outdir)
    needed = set()
    for docname in app.env.found_docs:
        path = Path(app.env.doc2path(docname, base=False)).as_posix()
        if path.endswith(".md"):
            needed |= rewrite_links(path, (ROOT / path).read_text(encoding="utf-8"))[1]
    for rel in sorted(needed):
        if rel.endswith(".py"):
            source_page(rel, outdir)
        else:
            (outdir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, outdir / rel)
    for notebook in sorted((DOCS / "examples").glob("*.ipynb")):   # the download links
        script = ROOT / "examples" / (notebook.stem + ".py")
        shutil.copyfile(notebook, outdir / "docs" / "examples" / notebook.name)
        (outdir / "examples").mkdir(exist_ok=True)
        shutil.copyfile(script, outdir / "examples" / script.name)
    root = outdir / (app.config.root_doc + ".html")
    if root.exists():                    # the front page also as index.html (same depth)
        shutil.copyfile(root, outdir / "index.html")


def on_env_get_outdated(app, env, added, changed, removed):
    return [app.config.root_doc]         # its navigation lists the other pages: always re-read


def on_builder_inited(app):
    """myst-nb keeps the notebooks' pictures beside the output folder (the repository root
    for site/): keep them beside the doctrees instead, in build/."""
    config = getattr(app.env, "mystnb_config", None)
    if config is not None:
        folder = Path(app.doctreedir).parent / "site-notebook-outputs"
        app.env.mystnb_config = config.copy(output_folder=str(folder))


def code_version():
    """A hash of this extension and of relink.py: a change to either must rebuild every page
    (the saved doctrees hold their output), so conf.py sets ``site_code_version`` to it."""
    import hashlib
    return hashlib.sha256(b"".join(p.read_bytes() for p in (TOOLS / "sphinx_site.py",
                                                           TOOLS / "relink.py"))).hexdigest()[:16]


def setup(app):
    app.add_config_value("site_code_version", "", "env")
    app.connect("builder-inited", on_builder_inited, priority=900)
    app.connect("env-get-outdated", on_env_get_outdated)
    app.connect("source-read", on_source_read)
    app.connect("doctree-read", on_doctree_read)
    app.connect("build-finished", on_build_finished)
    app.add_html_math_renderer("mathml", (visit_math, None), (visit_math_block, None))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
