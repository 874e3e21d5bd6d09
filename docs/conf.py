"""Sphinx configuration of the docs site (built from the repository root).

Build it with ``python docs/tools/build_site.py`` (needs ``pip install -e '.[docs]'``);
the site lands in site/. What the extension in docs/tools/sphinx_site.py does
to the plain Markdown pages is explained at its top.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))

project = "minitorch_cnn"
author = "the minitorch_cnn authors"
root_doc = "README"                      # the repository's front page is the site's
include_patterns = ["README.md", "docs/**", "benchmarks/**"]
exclude_patterns = ["docs/tools/**", "site/**", "build/**"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

extensions = ["myst_nb", "sphinx_site"]
site_code_version = __import__("sphinx_site").code_version()   # its change rebuilds every page
myst_enable_extensions = ["dollarmath"]
myst_dmath_double_inline = True          # $$...$$ inside a paragraph, as GitHub renders it
myst_heading_anchors = 4                 # GitHub's slugs, so page#heading links hold
myst_url_schemes = {                     # site:/sitef: are written by sphinx_site for files
    "http": None, "https": None, "mailto": None,
    "site": {"url": "{{path}}"},
    "sitef": {"url": "{{path}}#{{fragment}}"},
}
nb_execution_mode = "off"                # examples are executed by docs/tools/freeze_examples.py
suppress_warnings = ["myst.header"]      # pages may start at ## after a # title

html_theme = "furo"
html_title = "minitorch_cnn"
html_math_renderer = "mathml"            # MathML at build time: no script, works offline
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_favicon = "_static/favicon.svg"
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {"navigation_with_keys": True}
