"""Build the documentation site into `_docs/` from the notebooks in `nbs/`, with one command that works offline.

    python tools/build_docs.py                      # Quarto if `quarto` is on the PATH, else smalldocs
    python tools/build_docs.py --renderer smalldocs # force the pure-Python renderer

The sidebar is `nbs/sidebar.yml`, a static file whose globs list the notebooks by section in reading order (nbdev
leaves it alone: settings.ini has `custom_sidebar = True`). Steps:
1. nbdev's processing, as `nbdev_proc_nbs` does it (without its attempt to download Quarto): `nbs/nbdev.yml` from
   settings.ini, then `_proc/` with the notebooks' directives applied, front matter from their title cells, and a
   `show_doc` entry (signature, docstring, table of the parameters' docments) for every exported function and class.
   Cells flagged `slow`/`gpu`/`notest` are never run for it (nbdev runs every cell that contains an import).
2. `_proc/api.md`: the API reference, one row per exported function or class, linked to where it is derived.
3. Rendering of the `_quarto.yml` project in `_proc/` into `_docs/`: `quarto render` (what `nbdev_docs` runs) when a
   `quarto` binary is on the PATH, otherwise `smalldocs render` (pure Python; it reads the same `_quarto.yml`).
4. KaTeX copied into `_docs/site_libs/katex/` and every page pointed at it, so the maths is typeset without any CDN.
   KaTeX comes from `--katex DIR` or `$VAE_TUTORIAL_KATEX` (a KaTeX `dist/` folder), else from the npm package `katex`,
   installed once with npm into `build/katex/` (later builds reuse it and need no network).
   nbdev's links to the symbols' pages on the published site are made relative, so the site browses offline.
5. The latent explorer's files (notebook 11b): lesson 11's 2-D models from `nbs/runs/`, trained when missing.
6. A check that no page fetches anything from the network (scripts, styles, images, frames); only hyperlinks may
   point outside. The site opens from `file://` and from `python -m http.server --directory _docs`.
"""
import argparse, importlib, inspect, json, os, re, shutil, subprocess, sys
from pathlib import Path

import yaml
from nbdev.config import get_config

KATEX_VERSION = '0.16.11'  # the version smalldocs 0.5.4 links to; any 0.16.x works
KATEX_FILES = ['katex.min.css', 'katex.min.js', 'contrib/auto-render.min.js', 'fonts']
SKIP_FOLDERS = r'^[_.]|^runs$|^data$'  # hidden folders and training outputs/data (gitignored) stay out of the site


def say(msg): print(f'docs: {msg}', flush=True)


# ---------------------------------------------------------------- 1. nbdev processing

def signature_line(obj, maxline:int=100) -> str:
    "`def name(a:T, b:T=1)->R` (or `class ...`), wrapped one parameter a line when it is longer than `maxline`."
    sig = inspect.signature(obj)
    def name_of(o): return o if isinstance(o, str) else getattr(o, '__name__', None) or str(o).replace('typing.', '')
    ps, star = [], False
    for p in sig.parameters.values():
        if p.name in ('self', 'cls'): continue
        if p.kind == p.KEYWORD_ONLY and not star: ps.append('*'); star = True
        t = ('*' if p.kind == p.VAR_POSITIONAL else '**' if p.kind == p.VAR_KEYWORD else '') + p.name
        star |= p.kind == p.VAR_POSITIONAL
        if p.annotation is not p.empty: t += ':' + name_of(p.annotation)
        if p.default is not p.empty: t += '=' + (p.default.__name__ if hasattr(p.default, '__name__') else repr(p.default))
        ps.append(t)
    ret = sig.return_annotation
    ret = '' if ret is sig.empty or inspect.isclass(obj) else '->' + name_of(ret)
    kw = 'class' if inspect.isclass(obj) else 'async def' if inspect.iscoroutinefunction(obj) else 'def'
    name = getattr(obj, '__name__', str(obj))
    one = f"{kw} {name}({', '.join(ps)}){ret}"
    return one if len(one) <= maxline else f"{kw} {name}(\n    " + ',\n    '.join(ps) + f"\n){ret}"


def show_doc_markdown(self) -> str:
    "nbdev's classic `show_doc` layout: source link, name, signature, docstring, then a table of the docments."
    from fastcore.docments import DocmentTbl
    from nbdev.showdoc import NbdevLookup
    doc = '---\n\n'
    if src := NbdevLookup().code(self.fn): doc += f'[source]({src}){{target="_blank" style="float:right; font-size:smaller"}}\n\n'
    doc += f"{'#' * self.title_level} {self.nm}\n\n"
    try: doc += f'```python\n{signature_line(self.sym)}\n```\n\n'
    except (TypeError, ValueError): return self._nbdev_markdown()
    if self.docs: doc += re.sub(r'^(\s*)(.+)', r'\1*\2*', self.docs, count=1) + '\n\n'
    for twin in (False, True):  # a class defined in a notebook cell has no source to read: try the package's copy
        sym = package_twin(self.nm) if twin else self.sym
        if sym is None: continue
        try:
            if tbl := DocmentTbl(sym)._repr_markdown_(): return doc + tbl
        except Exception: pass
    return doc


def package_twin(qualname:str):
    "The package's exported object named `qualname` (e.g. `TrainConfig` or `VAE.forward`), if exactly one has that name."
    lib = get_config().lib_path.name
    try: syms = importlib.import_module(f'{lib}._modidx').d['syms']
    except Exception: return None
    hits = [(mod, key) for mod, d in syms.items() for key in d if key == f'{mod}.{qualname}']
    if len(hits) != 1: return None
    try:
        obj = importlib.import_module(hits[0][0])
        for part in qualname.split('.'): obj = getattr(obj, part)
        return obj
    except Exception: return None


def process(cfg) -> Path:
    """Run nbdev's notebook processing into `_proc/`, as `nbdev_proc_nbs` does but without its Quarto installer.

    It runs in this process (the patches below would not reach nbdev's worker processes), with `show_doc` rendering
    signature + docments table (nbdev 2.4's default puts the docments into the signature as comments) and without
    running cells flagged with settings.ini's `tst_flags`."""
    from nbdev.quarto import refresh_quarto_yml
    from nbdev.serve import proc_nbs
    import nbdev.doclinks, nbdev.showdoc
    refresh_quarto_yml()
    nbdev.doclinks._build_modidx()
    r = nbdev.showdoc.BasicMarkdownRenderer
    if not hasattr(r, '_nbdev_markdown'): r._nbdev_markdown = r._repr_markdown_
    r._repr_markdown_ = show_doc_markdown
    # nbdev runs every cell that contains an import to prepare show_doc; never one flagged slow/gpu/notest (a training
    # run or a benchmark), unless it is exported.
    import nbdev.processors as procs
    do_eval, flags = getattr(procs, '_nbdev_do_eval', procs._do_eval), set(cfg.tst_flags.split())
    procs._nbdev_do_eval = do_eval
    def _do_eval(cell):
        d = getattr(cell, 'directives_', None) or {}
        if flags & d.keys() and not {'export', 'exports', 'exporti', 'exec_doc'} & d.keys(): return None
        return do_eval(cell)
    procs._do_eval = _do_eval
    return proc_nbs(cfg.nbs_path, n_workers=0, force=True, skip_folder_re=SKIP_FOLDERS)


# ---------------------------------------------------------------- 2. API reference

def front_matter(nb:Path) -> dict:
    "The YAML front matter that nbdev put into a processed notebook's first (raw) cell."
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    if not cells or cells[0]['cell_type'] != 'raw': return {}
    m = re.match(r'^---\s*\n(.*?)\n---', ''.join(cells[0]['source']).strip(), flags=re.DOTALL)
    return yaml.safe_load(m.group(1)) or {} if m else {}


def default_exp(nb:Path) -> str | None:
    "The module a notebook exports to (`#| default_exp NAME`), if any."
    for cell in json.loads(nb.read_text(encoding='utf-8'))['cells']:
        if cell['cell_type'] != 'code': continue
        m = re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(cell['source']), flags=re.MULTILINE)
        if m: return m.group(1)
    return None


def md_cell(s:str) -> str:
    "A docstring's first paragraph made safe for one cell of a markdown table (its `code` spans kept)."
    parts = s.split('`')
    if len(parts) % 2 == 0: parts = [s.replace('`', "'")]  # unbalanced backticks: no code spans
    out = []
    for i, t in enumerate(parts):
        if i % 2: out.append('`' + t.replace('|', '\\|') + '`')
        else:
            for c in '\\|$*_<[': t = t.replace(c, '\\' + c)
            out.append(t)
    return ''.join(out)


def short_sig(obj) -> str:
    "`name(a, b, c)`: the parameter names of a function, or of a class's `__init__`."
    try:
        fn = obj.__init__ if inspect.isclass(obj) else obj
        ps = [p for n, p in inspect.signature(fn).parameters.items() if n not in ('self', 'cls')]
    except (TypeError, ValueError): return obj.__name__
    names = [('*' if p.kind == p.VAR_POSITIONAL else '**' if p.kind == p.VAR_KEYWORD else '') + p.name for p in ps]
    return f"{obj.__name__}({', '.join(names)})"


def api_page(cfg, proc:Path) -> str:
    "Markdown of the API reference: per module, each exported function and class with its summary and page link."
    from importlib import reload
    modidx = reload(importlib.import_module(f'{cfg.lib_path.name}._modidx')).d['syms']
    out = ['---', 'title: API reference',
           'description: Every function and class the package exports, linked to the notebook that derives and tests it.',
           '---', '']
    for nb in sorted(cfg.nbs_path.glob('[0-9]*.ipynb')):  # reading order, as the sidebar's globs list them
        mod = default_exp(nb)
        if not mod or not (proc/nb.name).exists(): continue
        modname = f'{cfg.lib_path.name}.{mod}'
        if not (cfg.lib_path/(mod.replace('.', '/') + '.py')).is_file(): continue  # a lesson that exports nothing
        try: m = importlib.import_module(modname)
        except Exception as e:
            say(f'warning: API reference: cannot import {modname}: {e}'); continue
        syms = modidx.get(modname, {})
        shown = set(re.findall(r'show_doc\(\s*(\w+\.\w+)', (proc/nb.name).read_text(encoding='utf-8')))  # Class.method entries
        title = front_matter(proc/nb.name).get('title', nb.stem)
        rows, consts = [], []
        for name in getattr(m, '__all__', []):
            obj = getattr(m, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                consts.append(name); continue
            link = syms.get(f'{modname}.{name}', ('#',))[0]
            anchor = link.split('#', 1)[1] if '#' in link else ''
            href = f'{nb.name}#{anchor}' if anchor else nb.name
            doc = (inspect.getdoc(obj) or '').split('\n\n')[0].replace('\n', ' ')
            rows.append(f'| [`{short_sig(obj)}`]({href}) | {md_cell(doc)} |')
            for meth, (mlink, _) in syms.items():
                if not meth.startswith(f'{modname}.{name}.'): continue
                mname = meth.rsplit('.', 1)[1]
                if mname.startswith('_'): continue
                fn = getattr(obj, mname, None)
                if not callable(fn): continue  # properties and attributes are documented with their class
                mdoc = (inspect.getdoc(fn) or '').split('\n\n')[0].replace('\n', ' ')
                sig = short_sig(fn).replace(f'{fn.__name__}(', f'{name}.{mname}(', 1)
                manchor = mlink.split('#', 1)[-1] if f'{name}.{mname}' in shown else anchor  # a method without show_doc: its class
                rows.append(f'| [`{sig}`]({nb.name}#{manchor}) | {md_cell(mdoc)} |')
        if not rows and not consts: continue
        out += [f'## `{modname}`', '', f'From [{title}]({nb.name}).', '']
        if rows: out += ['| function or class | what it does |', '|---|---|', *rows, '']
        if consts: out += ['Also exported: ' + ', '.join(f'`{c}`' for c in consts) + '.', '']
    return '\n'.join(out)


# ---------------------------------------------------------------- 3. render

def render(proc:Path, renderer:str) -> Path:
    "Render the `_quarto.yml` project in `proc`; returns the folder the site was written to."
    if renderer == 'quarto':
        say('rendering with Quarto (quarto render)')
        subprocess.run(['quarto', 'render', '--no-cache'], cwd=proc, check=True)
    else:
        if sys.version_info < (3, 11): sys.exit('docs: smalldocs needs Python >= 3.11; install Quarto or a newer Python')
        try: from smalldocs.site import build
        except ImportError: sys.exit('docs: smalldocs is not installed: pip install -e ".[dev]" (or install Quarto)')
        say('rendering with smalldocs (pure Python; no quarto on the PATH)')
        site = build(str(proc), quiet=True)
        for w in site.warnings:
            if 'output-file is not read' not in w: say(f'smalldocs: {w}')
    out = yaml.safe_load((proc/'nbdev.yml').read_text())['project']['output-dir']
    return proc/out


# ---------------------------------------------------------------- 4. KaTeX, links

def katex_dist(explicit:str|None, cache:Path) -> Path:
    "A KaTeX `dist/` folder: `explicit`, `$VAE_TUTORIAL_KATEX`, or the npm package installed once into `cache`."
    for d in [explicit, os.environ.get('VAE_TUTORIAL_KATEX')]:
        if d:
            if missing := [f for f in KATEX_FILES if not (Path(d)/f).exists()]:
                sys.exit(f'docs: {d} is not a complete KaTeX dist/ folder: {", ".join(missing)} missing')
            return Path(d)
    dist = cache/'node_modules'/'katex'/'dist'
    pkg = cache/'node_modules'/'katex'/'package.json'
    if pkg.is_file() and json.loads(pkg.read_text())['version'] == KATEX_VERSION and (dist/'katex.min.js').is_file():
        return dist
    npm = shutil.which('npm')
    if not npm: sys.exit('docs: KaTeX is needed and npm is not installed: install Node.js/npm, or pass --katex DIR')
    say(f'installing KaTeX {KATEX_VERSION} with npm into {cache} (once)')
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, 'install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', '--prefix', str(cache),
                    f'katex@{KATEX_VERSION}'], check=True)
    if missing := [f for f in KATEX_FILES if not (dist/f).exists()]:
        sys.exit(f'docs: npm did not install a complete KaTeX into {cache}: {", ".join(missing)} missing')
    return dist


def copy_katex(dist:Path, site:Path):
    dest = site/'site_libs'/'katex'
    shutil.rmtree(dest, ignore_errors=True)
    for f in KATEX_FILES:
        src = dist/f
        (dest/f).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir(): shutil.copytree(src, dest/f)
        else: shutil.copy2(src, dest/f)
    lic = dist.parent/'LICENSE'
    if lic.is_file(): shutil.copy2(lic, dest/'LICENSE')


_re_katex_cdn = re.compile(r'''(src|href)=(["'])https?://[^"']*?/katex(?:@[^/"']*)?/dist/([^"']+)\2''')
_re_toc = re.compile(r'(<a href="#([^"]+)" id="toc-\2"[^>]*>)(.*?)(</a>)', flags=re.DOTALL)


def fix_page(text:str, offset:str, doc_prefix:str, pages:dict) -> str:
    "Point KaTeX at the site's copy, make links to the published site relative, typeset maths in the TOC."
    text = _re_katex_cdn.sub(lambda m: f'{m[1]}={m[2]}{offset}site_libs/katex/{m[3]}{m[2]}', text)
    def local(m):
        page, frag = m[2], m[3] or ''
        return f'href={m[1]}{offset}{pages[page]}{frag}{m[1]}' if page in pages else m[0]
    text = re.sub(r'''href=(["'])''' + re.escape(doc_prefix) + r'''([^"'#]+\.html)(#[^"']*)?\1''', local, text)
    def toc(m):  # smalldocs writes a heading's text into the TOC without its maths: use the heading's own HTML
        if '\\' not in m[3] and '$' not in m[3]: return m[0]
        h = re.search(r'<h[1-6][^>]*\bid="' + re.escape(m[2]) + r'"[^>]*>(.*?)</h[1-6]>', text, flags=re.DOTALL)
        if not h or 'class="math' not in h[1]: return m[0]
        inner = re.sub(r'<a [^>]*class="anchor[^"]*"[^>]*>.*?</a>', '', h[1], flags=re.DOTALL)
        return m[1] + inner + m[4]
    return _re_toc.sub(toc, text)


def page_map(proc:Path, site:Path) -> dict:
    "nbdev's page names (`output-file`, e.g. `elbo.html`) to the pages the renderer wrote (`elbo.html` or `00_elbo.html`)."
    res = {}
    for nb in proc.glob('*.ipynb'):
        name = front_matter(nb).get('output-file')
        if not name: continue
        for cand in [name, nb.with_suffix('.html').name]:
            if (site/cand).is_file(): res[name] = cand; break
    return res


_re_link = re.compile(r'<a\b[^>]*?\bhref="([^"#:]*?\.html)?#([^"]+)"[^>]*>(.*?)</a>', flags=re.DOTALL)


def unlink_dead_anchors(site:Path) -> tuple[int, list[str]]:
    "nbdev links every backticked name it indexes, private ones with no doc entry too: such a link to a missing anchor"
    "becomes its plain `<code>`. Returns how many, and every other internal link to a missing anchor (a build error)."
    from urllib.parse import unquote
    pages = [p for p in site.glob('*.html')]
    ids = {p.name: set(re.findall(r'\bid="([^"]+)"', p.read_text(encoding='utf-8'))) for p in pages}
    unlinked, broken = 0, []
    for p in pages:
        text = p.read_text(encoding='utf-8')
        def check(m):
            nonlocal unlinked
            target, frag = m[1] or p.name, unquote(m[2])
            if target not in ids or frag in ids[target]: return m[0]
            if re.fullmatch(r'\s*<code>[^<]*</code>\s*', m[3]): unlinked += 1; return m[3]
            broken.append(f'{p.name}: {m[1] or ""}#{m[2]}'); return m[0]
        if (fixed := _re_link.sub(check, text)) != text: p.write_text(fixed, encoding='utf-8')
    return unlinked, broken


# ---------------------------------------------------------------- 6. offline check

_re_tag = re.compile(r'<(script|link|img|iframe|source|video|audio|embed|object|track|input)\b[^>]*>', flags=re.I)
_re_attr = re.compile(r'''\b(src|href|data|srcset|poster)\s*=\s*(["'])(.*?)\2''', flags=re.I | re.S)
# A theme's web fonts (`@import url(https://...)`): dropped, so the font stack's local fallbacks are used.
_re_remote_import = re.compile(r'''@import\s+(?:url\(\s*["']?(?:https?:)?//[^)]*\)|["'](?:https?:)?//[^"']*["'])[^;]*;''', flags=re.I)
_re_css_url = re.compile(r'''(?:url\(\s*["']?|@import\s+["'])\s*(https?:)?//''', flags=re.I)


def network_fetches(text:str) -> list[str]:
    "Resources a page would fetch from the network (not hyperlinks): scripts, styles, images, frames, media."
    bad = []
    for tag in _re_tag.finditer(text):
        for a in _re_attr.finditer(tag[0]):
            if re.match(r'\s*(https?:)?//', a[3]): bad.append(tag[0][:160])
    for style in re.findall(r'<style\b[^>]*>(.*?)</style>|style="([^"]*)"', text, flags=re.S | re.I):
        if any(_re_css_url.search(s) for s in style): bad.append('inline style with a remote url()')
    return bad


# ---------------------------------------------------------------- 5. the explorer's models

def write_explorer_files(cfg, folder:Path):
    "The latent explorer of notebook 11b: lesson 11's 2-D models (trained first when their checkpoints are missing)."
    from vae_tutorial.explorer import build_explorer
    say(f'explorer: exporting lesson 11\'s 2-D VAE and CVAE into {folder.relative_to(cfg.config_path)}/')
    try: built = build_explorer(folder, cfg.nbs_path/'runs')
    except Exception as e:
        sys.exit(f'docs: the explorer page (notebook 11b_explorer) needs lesson 11\'s 2-D models and the MNIST test split: {e}')
    for name, err in built.pop('rounding').items():
        say(f'explorer: {name}: float16 weights move its encoder means by at most {err["encoder_mean"]:.1e}, '
            f'its decoded images by at most {err["decoded"]:.1e}')
    say('explorer: ' + ', '.join(f'{f} {n / 1e3:.0f} kB' for f, n in built.items()))


# ---------------------------------------------------------------- main

def build(renderer:str='auto', katex:str|None=None) -> Path:
    "Build the site into settings.ini's `doc_path` (`_docs/`); returns that folder."
    cfg = get_config()
    if renderer == 'auto': renderer = 'quarto' if shutil.which('quarto') else 'smalldocs'
    if renderer == 'quarto' and not shutil.which('quarto'): sys.exit('docs: --renderer quarto, but no quarto on the PATH')
    dist = katex_dist(katex, cfg.config_path/'build'/'katex')  # fail early, before the slow steps

    say('processing notebooks into _proc/ (nbdev)')
    proc = process(cfg)
    (proc/'api.md').write_text(api_page(cfg, proc), encoding='utf-8')

    out = render(proc, renderer)
    dest = cfg.doc_path
    if out.resolve() != dest.resolve():
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(str(out), str(dest))
    copy_katex(dist, dest)
    write_explorer_files(cfg, dest/'explorer')

    doc_prefix = '/'.join(s.strip('/') for s in [cfg.doc_host, cfg.doc_baseurl] if s.strip('/')) + '/'
    pages = page_map(proc, dest)
    bad = {}
    for page in sorted(dest.rglob('*.html')):
        if 'site_libs' in page.relative_to(dest).parts: continue
        rel = os.path.relpath(dest, page.parent)
        offset = '' if rel == '.' else rel.replace(os.sep, '/') + '/'
        text = fix_page(page.read_text(encoding='utf-8'), offset, doc_prefix, pages)
        page.write_text(text, encoding='utf-8')
        if f := network_fetches(text): bad[str(page.relative_to(dest))] = f
    for css in dest.rglob('*.css'):
        text = css.read_text(encoding='utf-8', errors='replace')
        if (fixed := _re_remote_import.sub('', text)) != text: css.write_text(text := fixed, encoding='utf-8')
        if _re_css_url.search(text):
            bad[str(css.relative_to(dest))] = ['url() or @import from the network']
    unlinked, broken = unlink_dead_anchors(dest)
    if unlinked: say(f'{unlinked} links to names without a doc entry (private helpers) left as plain code')
    if broken:
        for b in broken: say(f'error: link to a missing anchor: {b}')
        sys.exit('docs: internal links point to anchors that no page has (see above)')
    if bad:
        for page, fs in bad.items(): say(f'error: {page} fetches from the network: {fs[:3]}')
        sys.exit('docs: the site must not fetch anything from the network (see above)')
    n = len([p for p in dest.glob('*.html')])
    size = sum(p.stat().st_size for p in dest.rglob('*') if p.is_file())
    say(f'site size: {size / 1e6:.1f} MB ({(size - sum(p.stat().st_size for p in (dest/"explorer").rglob("*"))) / 1e6:.1f} MB '
        'without the explorer\'s models)')
    say(f'built {n} pages into {dest} ({renderer}); open {dest}/index.html, or run: '
        f'python -m http.server --directory {dest.relative_to(cfg.config_path)}')
    return dest


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='\n'.join(__doc__.splitlines()[1:]))
    p.add_argument('--renderer', choices=['auto', 'quarto', 'smalldocs'], default='auto',
                   help='auto: quarto when it is on the PATH, else smalldocs')
    p.add_argument('--katex', metavar='DIR', help='a KaTeX dist/ folder to serve (default: $VAE_TUTORIAL_KATEX, '
                   f'else npm katex@{KATEX_VERSION} cached in build/katex/)')
    a = p.parse_args()
    build(a.renderer, a.katex)


if __name__ == '__main__': main()
