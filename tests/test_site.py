"""The docs site, opened page by page in a real browser (headless Chromium).

The site is the one in site/ when it is newer than every file it is built
from (.ci/docs builds it just before the tests), else it is built here into a
temporary folder (which needs ``pip install -e '.[docs]'``). It is served on
localhost and every page is opened in Debian's Chromium through selenium and
chromedriver. Each page must

* log no console error (severity SEVERE);
* load every resource from the site itself: no script, stylesheet, font or
  picture from the network (a classroom may be offline);
* show no raw TeX in its visible text (``$$``, ``\\frac``, ``\\begin{``...):
  math is MathML by then;
* have every image loaded (``naturalWidth > 0``);
* have every internal link resolve: the file exists, and a ``#fragment`` names
  an element of the target page (``#L10-L20`` on a source page: lines 10 and 20).

The browser tests are skipped, with the reason, where Chromium, chromedriver
or selenium is missing (CI installs them: .ci/run). Set MINITORCH_SITE_SCREENSHOTS=DIR to keep
screenshots of the front page, the Conv2d page and an example page.
"""
import html.parser
import os
import re
import shutil
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
SOURCES = ["README.md", "docs", "benchmarks", "examples"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
RAW_TEX = re.compile(r"\$\$|\\(frac|begin|end|partial|mathbf|mathrm|sum|sqrt|left|right|top|cdot|text)\b"
                     r"|(?<![\w$])\$[^\s$][^$\n]{0,60}(?<!\s)\$(?![\w$])")
SCREENSHOTS = {"front page": "index.html", "conv2d": "docs/layers/conv2d.html",
               "example": "docs/examples/02_im2col_step_by_step.html"}

needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) or __import__("importlib").util.find_spec("selenium") is None,
    reason="no browser to open the site in: needs Debian's chromium and chromium-driver "
           "(apt-get install -y chromium chromium-driver) and selenium (pip install selenium)")


def _newest_source():
    newest = 0.0
    for name in SOURCES:
        path = ROOT / name
        for p in [path] if path.is_file() else path.rglob("*"):
            if p.is_file() and p.suffix in {".md", ".ipynb", ".py", ".css", ".txt", ".csv", ".json", ".png"}:
                newest = max(newest, p.stat().st_mtime)
    return newest


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site's folder: site/ when it is up to date, else a fresh build."""
    index = SITE / "index.html"
    if index.exists() and index.stat().st_mtime >= _newest_source():
        return SITE
    pytest.importorskip("sphinx", reason="site/ is missing or stale, and building it needs "
                                         "pip install -e '.[docs]'")
    pytest.importorskip("myst_nb", reason="building the site needs pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "tools" / "build_site.py"),
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def server(site):
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


def _ids(path, cache={}):
    if path not in cache:
        parser = _Ids()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = parser.ids
    return cache[path]


def link_problem(site, page_url, href):
    """Why an internal link does not resolve, or None."""
    parts = urlsplit(href)
    path = site / unquote(parts.path).lstrip("/")
    if parts.path.endswith("/") or path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        return f"{href}: no such file"
    fragment = unquote(parts.fragment)
    if not fragment or path.suffix != ".html":
        return None
    m = re.match(r"^L(\d+)(?:-L(\d+))?$", fragment)
    wanted = [f"L{m.group(1)}", f"L{m.group(2) or m.group(1)}"] if m and path.name.endswith(".py.html") \
        else [fragment]
    missing = [w for w in wanted if w not in _ids(path)]
    return f"{href}: no element #{', #'.join(missing)} in {path.relative_to(site)}" if missing else None


CHECK_PAGE = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
images.forEach(i => { i.loading = 'eager'; });
Promise.all(images.map(i => i.decode().catch(() => null))).then(() => {
  const text = document.body.cloneNode(true);
  text.querySelectorAll('pre, code, script, style, math, .highlight, textarea, main.src').forEach(e => e.remove());
  done({
    text: text.textContent,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc || i.src),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    resources: performance.getEntriesByType('resource').map(r => r.name),
    maths: document.querySelectorAll('math').length,
  });
});
"""


@needs_browser
def test_every_page_opens_cleanly_in_chromium(site, server, browser):
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert "index.html" in pages and "docs/layers/conv2d.html" in pages
    problems, checked_links = [], 0
    for page in pages:
        url = urljoin(server, page)
        browser.get(url)
        result = browser.execute_async_script(CHECK_PAGE)
        for entry in browser.get_log("browser"):
            if entry["level"] == "SEVERE":
                problems.append(f"{page}: console error: {entry['message'][:300]}")
        for name in result["resources"] + [url]:
            if not name.startswith(server):
                problems.append(f"{page}: loads {name} from outside the site")
        tex = RAW_TEX.search(result["text"])
        if tex:
            around = result["text"][max(0, tex.start() - 60):tex.end() + 60].replace("\n", " ")
            problems.append(f"{page}: raw TeX {tex.group(0)!r} in the text: ...{around}...")
        problems += [f"{page}: image did not load: {src}" for src in result["broken"]]
        for href in result["links"]:
            if href.startswith(server):
                checked_links += 1
                why = link_problem(site, url, href[len(server) - 1:])
                if why:
                    problems.append(f"{page}: broken link {why}")
    assert checked_links > 500
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])


@needs_browser
def test_math_is_mathml_and_examples_show_output(site, server, browser):
    """The pages a class starts from render what they promise: formulas as MathML, each
    example with its code, printed output and pictures, and a notebook to download;
    search finds the Conv2d page."""
    browser.get(urljoin(server, "docs/layers/conv2d.html"))
    assert len(browser.find_elements("css selector", "math")) > 20
    assert browser.find_element("css selector", "math").size["width"] > 0  # rendered, not hidden
    for notebook in sorted((ROOT / "docs" / "examples").glob("*.ipynb")):
        browser.get(urljoin(server, f"docs/examples/{notebook.stem}.html"))
        info = browser.execute_async_script(CHECK_PAGE)
        code = browser.find_elements("css selector", "div.cell_input")
        output = browser.find_elements("css selector", "div.cell_output")
        assert len(code) >= 3 and len(output) >= 1, notebook.name
        pictures = [s for s in browser.execute_script(
            "return Array.from(document.images).map(i => i.naturalWidth)") if s > 100]
        assert pictures, f"{notebook.name}: no picture on its page"
        assert any(link.endswith(f"{notebook.stem}.ipynb") for link in info["links"]), notebook.name
    browser.get(urljoin(server, "search.html?q=winograd"))   # search works offline
    from selenium.webdriver.support.ui import WebDriverWait
    hits = WebDriverWait(browser, 20).until(
        lambda b: b.find_elements("css selector", "#search-results ul.search li"))
    assert any("conv2d" in h.find_element("css selector", "a").get_attribute("href") for h in hits)
    shots = os.environ.get("MINITORCH_SITE_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        for name, page in SCREENSHOTS.items():
            browser.get(urljoin(server, page))
            browser.execute_async_script(CHECK_PAGE)  # every image loaded: the layout is final
            if name == "example":                 # show a picture the example drew
                browser.execute_script("document.querySelector('.cell_output img')"
                                       ".scrollIntoView({block: 'center', behavior: 'instant'})")
            browser.save_screenshot(str(Path(shots) / f"{name.replace(' ', '_')}.png"))


def test_site_has_every_page_and_search(site):
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        rel = md.relative_to(ROOT).with_suffix(".html")
        if rel.parts[:2] != ("docs", "tools"):
            assert (site / rel).is_file(), f"{rel} missing from the site"
    for script in sorted((ROOT / "examples").glob("[0-9][0-9]_*.py")):
        assert (site / "docs" / "examples" / (script.stem + ".html")).is_file(), script.name
        assert (site / "docs" / "examples" / (script.stem + ".ipynb")).is_file(), script.name
    index = (site / "searchindex.js").read_text(encoding="utf-8")
    assert "im2col" in index and "batchnorm" in index.lower()
