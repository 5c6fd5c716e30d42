"""The documentation site, built with the README's command (`python tools/build_docs.py`) into `_docs/`.

The files are checked directly (a page per notebook, sidebar in reading order, API reference, nothing fetched from the
network), then the ELBO page is opened in headless Chromium, from `file://` and through `python -m http.server`: its
equations must be typeset by KaTeX and its figures must load. The browser checks are skipped, with the reason shown,
when Chromium is not installed (`.ci/run` installs Debian's `chromium`). Screenshots of the ELBO page are left at
`_docs/screenshot_elbo.png` (its top) and `_docs/screenshot_elbo_figure.png` (its first figure) for CI to keep."""
import html
import importlib
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import http_server
from fastcore.docments import DocmentTbl
from nbdev.config import get_config

cfg = get_config()
ROOT, DOCS = cfg.config_path, cfg.doc_path
NOTEBOOKS = sorted(p for p in cfg.nbs_path.glob('*.ipynb') if not p.name.startswith(('_', '.')))
NUM = re.compile(r'^(\d+)([a-zA-Z0-9]*)_')  # nbdev's numbering prefix: 00_, 09b_, ...
NUMBERED = sorted((p for p in NOTEBOOKS if NUM.match(p.name)),
                  key=lambda p: (int(NUM.match(p.name)[1]), NUM.match(p.name)[2], p.name))
CHROMIUM = next((shutil.which(n) for n in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason='Chromium is not installed: apt-get install chromium (Debian), as .ci/run does')
# A script or style loaded from another host, in an HTML page (hyperlinks, <a href>, may point anywhere).
REMOTE = re.compile(r'''<(?:script|img|iframe|source|embed|video|audio|track)\b[^>]*\bsrc\s*=\s*["']?(?:https?:)?//'''
                    r'''|<link\b[^>]*\bhref\s*=\s*["']?(?:https?:)?//|<object\b[^>]*\bdata\s*=\s*["']?(?:https?:)?//''',
                    flags=re.I)
ELBO_TEX = r'\mathrm{ELBO}(x;\,q) = \mathbb{E}_{q(z\mid x)}'  # the ELBO's definition in 00_elbo, as KaTeX keeps it


def short(stem:str) -> str: return NUM.sub('', stem).lower()  # nbdev's page name for a notebook


def page(stem:str) -> Path:
    "The page of notebook `stem`: Quarto names it after nbdev's `output-file` (`elbo.html`), smalldocs after the file."
    for p in (DOCS/f'{stem}.html', DOCS/f'{short(stem)}.html'):
        if p.is_file(): return p
    raise AssertionError(f'no page for {stem}.ipynb in {DOCS}: {sorted(q.name for q in DOCS.glob("*.html"))}')


def figures(nb:Path) -> int:
    "How many figures (PNG outputs) the shown cells of a notebook carry."
    n = 0
    for cell in json.loads(nb.read_text(encoding='utf-8'))['cells']:
        src = ''.join(cell.get('source', ''))
        if cell['cell_type'] != 'code' or re.search(r'^#\|\s*(hide|output:\s*false|include:\s*false)', src, flags=re.M): continue
        n += sum('image/png' in o.get('data', {}) for o in cell.get('outputs', []))
    return n


def test_title_cells_hold_only_title_and_summary():
    "nbdev turns a notebook's `# Title` cell into the page's front matter and drops the cell: anything else in it is lost."
    for nb in NOTEBOOKS:
        cells = [''.join(c['source']) for c in json.loads(nb.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'markdown']
        title = next((c for c in cells if re.search(r'^#\s+\S', c, flags=re.M)), None)
        assert title is not None, f'{nb.name} has no # Title'
        rest = [l for l in title.splitlines() if l.strip() and not re.match(r'^(#\s|>\s|-\s+\S.*:)', l)]
        assert not rest, f'{nb.name}: its title cell holds more than the title and summary (nbdev drops it): {rest[:2]}'


def test_a_page_per_notebook(site):
    assert len(NUMBERED) >= 4
    for nb in NOTEBOOKS:
        text = page(nb.stem).read_text(encoding='utf-8')
        assert '<h1' in text and 'id="quarto-sidebar"' in text, nb.name
        if n := figures(nb): assert text.count('<img') >= n, f'{nb.name} has {n} figures, its page fewer'
    index = page('index').read_text(encoding='utf-8')
    for s in ('Install', 'Train', 'The lessons', 'Results', 'Docs', 'python tools/build_docs.py'):
        assert s in index, f'index.html lacks the README\'s {s!r}'
    table = re.search(r'<h2[^>]*>\s*Results.*?(<table.*?</table>)', index, flags=re.S)
    assert table and 'test loss' in table[1], 'index.html has no results table'


def test_sidebar_reading_order(site):
    nav = re.search(r'<nav[^>]*id="quarto-sidebar".*?</nav>', page('index').read_text(encoding='utf-8'), flags=re.S)
    assert nav, 'no sidebar'
    hrefs = [h for h in re.findall(r'href="([^"#]+)"', nav[0]) if not h.startswith(('http:', 'https:'))]
    names = [short(Path(h).stem) for h in hrefs]
    assert not [h for h in hrefs if not h.endswith('.html')], f'sidebar links to non-pages: {hrefs}'
    for internal in ('nbdev', 'sidebar', '_quarto', 'styles'):
        assert internal not in names, f'internal file {internal} in the sidebar: {hrefs}'
    want = ['index'] + [short(p.stem) for p in NUMBERED]
    got = [n for n in names if n in want]
    assert got == want, f'sidebar order {got}, expected {want}'
    assert 'api' in names, 'no API reference in the sidebar'
    text = html.unescape(re.sub(r'<[^>]+>', ' ', nav[0]))
    assert 'The evidence lower bound (ELBO)' in text, 'the sidebar shows file names, not titles'


def test_api_reference(site):
    "Every exported function and class is in the API reference, and has its nbdev show_doc entry on its page."
    modidx = importlib.import_module(f'{cfg.lib_path.name}._modidx').d['syms']
    api = page('api').read_text(encoding='utf-8')
    missing, no_doc = [], []
    for modname, syms in modidx.items():
        mod = importlib.import_module(modname)
        for name in getattr(mod, '__all__', []):
            obj = getattr(mod, name)
            if not callable(obj): continue
            if f'>{name}(' not in api: missing.append(f'{modname}.{name}')
            link = syms.get(f'{modname}.{name}', ('',))[0]
            if '#' not in link: continue
            pg, anchor = link.split('#', 1)
            nb = next((p for p in NOTEBOOKS if short(p.stem) == Path(pg).stem), None)
            if nb is None: continue
            text = page(nb.stem).read_text(encoding='utf-8')
            # each element with that id (a section may share the name), from there to the next show_doc entry
            entries = [text[m.start():text.find('<hr', m.start())] for m in re.finditer(rf'id="{re.escape(anchor)}(?:-\d+)?"', text)]
            try: has_table = DocmentTbl(obj).has_docment
            except Exception: has_table = False  # e.g. an exception class
            if not any('class="sourceCode' in e and (not has_table or 'Details' in e) for e in entries):
                no_doc.append(f'{modname}.{name}')
    assert not missing, f'not in api.html: {missing}'
    assert not no_doc, f'no show_doc entry (signature and docments table) on their pages: {no_doc}'
    for p in site.glob('*.html'):  # nbdev's links to symbols point into this site, not at the published one
        assert cfg.doc_host + cfg.doc_baseurl not in p.read_text(encoding='utf-8'), p.name


def test_nothing_fetched_from_the_network(site):
    bad = {}
    for p in site.rglob('*.html'):
        if hits := [m[0][:120] for m in REMOTE.finditer(p.read_text(encoding='utf-8'))]: bad[p.name] = hits
    for p in site.rglob('*.css'):
        if re.search(r'''(?:url\(\s*["']?|@import\s+["']?)(?:https?:)?//''', p.read_text(encoding='utf-8', errors='replace')):
            bad[p.name] = ['url()/@import from the network']
    assert not bad, f'pages that fetch from the network: {bad}'
    katex = site/'site_libs'/'katex'
    for f in ('katex.min.js', 'katex.min.css', 'contrib/auto-render.min.js'): assert (katex/f).is_file(), f
    assert list((katex/'fonts').glob('*.woff2')), 'KaTeX fonts missing'
    assert 'site_libs/katex/katex.min.js' in page('00_elbo').read_text(encoding='utf-8')


def test_figures_have_alt_text_and_no_progress_frames(site):
    "Every figure of every page says what it shows (`#| fig-alt:`); no page shows a tqdm frame (a moment, not a result)."
    no_alt, frames = [], []
    for p in sorted(site.glob('*.html')):
        text = p.read_text(encoding='utf-8')
        no_alt += [f'{p.name} figure {i}' for i, img in enumerate(re.findall(r'<img\b[^>]*>', text))
                   if 'data:image/png' in img and not re.search(r'\balt="[^"]{20,}"', img)]
        frames += [f'{p.name}: {m[0][:80]}' for m in re.finditer(r'[^\n<>]*\d+%\|[^\n<>]*\|[^\n<>]*', visible_text(text))]
    assert not no_alt, f'figures without alt text: {no_alt}'
    assert not frames, f'progress-bar frames in built pages: {frames[:5]}'


# ---------------------------------------------------------------- in the browser

def chromium(url:str, *args:str, tmp:Path) -> str:
    "Run headless Chromium with a fresh profile on `url`; returns its stdout (the DOM with --dump-dom)."
    profile = tmp/f'profile{time.monotonic_ns()}'
    cmd = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
           f'--user-data-dir={profile}', '--virtual-time-budget=10000', *args, url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f'chromium failed ({res.returncode}): {res.stderr[-3000:]}'
    return res.stdout


def visible_text(dom:str) -> str:
    "The text a reader sees, without code blocks, scripts and KaTeX's copy of the TeX source."
    for tag in ('script', 'style', 'pre', 'code', 'annotation', 'head'):
        dom = re.sub(rf'<{tag}\b.*?</{tag}>', ' ', dom, flags=re.S | re.I)
    return html.unescape(re.sub(r'<[^>]+>', ' ', dom))


def assert_typeset(dom:str):
    assert dom.count('class="katex"') > 20, 'KaTeX did not typeset the maths'
    assert 'class="katex-display"' in dom, 'no display equation typeset'
    assert 'katex-error' not in dom, 'KaTeX could not typeset: ' + ', '.join(re.findall(r'katex-error[^>]*title="([^"]*)"', dom)[:3])
    tex = [html.unescape(t) for t in re.findall(r'<annotation encoding="application/x-tex">(.*?)</annotation>', dom, flags=re.S)]
    assert any(ELBO_TEX in t for t in tex), 'the ELBO equation was not typeset'
    text = visible_text(dom)
    for raw in ('$$', '\\[', '\\]', '\\(', '\\)'):
        assert raw not in text, f'raw maths delimiter {raw} left in the page: ...{text[max(0, text.find(raw) - 80):text.find(raw) + 80]}...'


HARNESS = """<!doctype html><html><body style="margin:0"><pre id="result" style="display:none">pending</pre>
<iframe id="page" src="%s" style="border:0;width:100vw;height:100vh"></iframe>
<script>
const f = document.getElementById('page');
f.addEventListener('load', () => setTimeout(() => {
  let r;
  try {
    const d = f.contentDocument, imgs = Array.from(d.images);
    r = {katex: d.querySelectorAll('.katex').length, errors: d.querySelectorAll('.katex-error').length,
         images: imgs.length, loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
         styled: getComputedStyle(d.querySelector('.katex')).fontFamily,
         wide: Array.from(d.querySelectorAll('.katex-display')).filter(e => e.scrollWidth > e.clientWidth + 1
                 && getComputedStyle(e).overflowX !== 'auto' && getComputedStyle(e).overflowX !== 'scroll').length,
         scrolls: getComputedStyle(d.querySelector('.katex-display')).overflowX,
         fonts: Array.from(d.fonts).filter(x => x.status === 'loaded').map(x => x.family)};
    d.documentElement.style.scrollBehavior = 'auto';  // show the first figure (for a screenshot)
    if (imgs.length) (imgs[0].closest('.cell') || imgs[0]).scrollIntoView({block: 'center', behavior: 'instant'});
  } catch (e) { r = {error: String(e)}; }
  document.getElementById('result').textContent = JSON.stringify(r);
}, 1000));
</script></body></html>"""


def frame_report(url:str, harness_file:Path, harness_url:str, tmp:Path) -> dict:
    "Open `url` in a frame of a page written to `harness_file` (same origin), and read the frame's DOM after its scripts ran."
    harness_file.write_text(HARNESS % url, encoding='utf-8')
    flags = ['--allow-file-access-from-files'] if harness_url.startswith('file:') else []  # lets file:// read its frame
    dom = chromium(harness_url, '--dump-dom', *flags, tmp=tmp)
    m = re.search(r'<pre id="result"[^>]*>(.*?)</pre>', dom, flags=re.S)
    assert m, dom[-2000:]
    return json.loads(html.unescape(m[1]))


def assert_loaded(r:dict):
    assert 'error' not in r, r
    assert r['katex'] > 20 and r['errors'] == 0, r
    assert 'KaTeX' in r['styled'], f"KaTeX's CSS did not load: {r}"
    assert any('KaTeX_Main' in f for f in r['fonts']), f"KaTeX's fonts did not load: {r}"
    assert r['images'] >= 1 and r['loaded'] == r['images'], f'figures that did not load: {r}'
    assert r['scrolls'] == 'auto' and r['wide'] == 0, f'display equations wider than the page must scroll, not be cut: {r}'


@needs_chromium
def test_elbo_page_from_file(site, tmp_path):
    elbo = page('00_elbo')
    assert_typeset(chromium(elbo.as_uri(), '--dump-dom', tmp=tmp_path))
    shot = site/'screenshot_elbo.png'
    shot.unlink(missing_ok=True)
    chromium(elbo.as_uri(), f'--screenshot={shot}', '--window-size=1280,2400', '--hide-scrollbars', tmp=tmp_path)
    assert shot.is_file() and shot.stat().st_size > 50_000, 'no screenshot'
    assert shot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    harness = tmp_path/'harness.html'
    assert_loaded(frame_report(elbo.as_uri(), harness, harness.as_uri(), tmp_path))
    # the same frame, scrolled to the first figure: a second screenshot
    chromium(harness.as_uri(), '--allow-file-access-from-files', f'--screenshot={site/"screenshot_elbo_figure.png"}',
             '--window-size=1280,1400', '--hide-scrollbars', tmp=tmp_path)


@needs_chromium
def test_elbo_page_over_http(site, tmp_path):
    served = tmp_path/'served'
    served.mkdir()
    (served/'site').symlink_to(site.resolve(), target_is_directory=True)
    with http_server(served) as base:
        url = base + 'site/' + page('00_elbo').name
        assert_typeset(chromium(url, '--dump-dom', tmp=tmp_path))
        assert_loaded(frame_report(url, served/'harness.html', base + 'harness.html', tmp_path))


@needs_chromium
def test_every_internal_link_resolves(site, tmp_path):
    "Every link from a page to a page of the site, or to an anchor in one, lands on something in Chromium's DOM."
    from urllib.parse import unquote, urlsplit
    doms = {p.name: chromium(p.as_uri(), '--dump-dom', tmp=tmp_path) for p in sorted(site.glob('*.html'))}
    ids = {name: set(re.findall(r'\bid="([^"]+)"', dom)) for name, dom in doms.items()}
    broken, n = [], 0
    for name, dom in doms.items():
        for href in re.findall(r'<a\b[^>]*?\bhref="([^"]*)"', dom):
            u = urlsplit(html.unescape(href))
            if u.scheme or u.netloc or (not u.path and not u.fragment): continue
            n += 1
            target = Path(unquote(u.path)).name if u.path else name
            if target not in ids: broken.append(f'{name} -> {href} (no such page)')
            elif u.fragment and unquote(u.fragment) not in ids[target]: broken.append(f'{name} -> {href} (no such anchor)')
    assert n > 500, f'only {n} internal links found: the pages did not load?'
    assert not broken, f'{len(broken)} of {n} internal links broken: {broken[:10]}'
