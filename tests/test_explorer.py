"""The latent explorer page (notebook 11b_explorer) in headless Chromium, driven by Playwright with the system's Chromium.

The site is built once with the README's command (`site` in conftest.py). The page is opened from `file://` and through
`python -m http.server`; every request it makes must stay on the site. The models run in the page's JavaScript and are
compared with the same models in Python (`site_model`: the float16 weights the page holds, computed in float32): the
decoded image at fixed z and the encoder's mean of fixed test digits, within 1e-3. Against the trained float32 models the
page must stay within one grey level (1/255). Pointer moves over the latent plane must decode two different images, and
strokes drawn with synthetic mouse events must move the posterior ellipse. A screenshot is left at
`_docs/screenshot_explorer.png`, beside the ELBO page's."""
import shutil
from pathlib import Path

import pytest
import torch
from conftest import HAS_MNIST, NO_MNIST, http_server
from nbdev.config import get_config

CHROMIUM = next((shutil.which(n) for n in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(n)), None)
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason='Chromium is not installed: apt-get install chromium (Debian), as .ci/run does'),
    pytest.mark.skipif(sync_playwright is None, reason='Playwright is not installed: pip install -e ".[dev]"'),
    pytest.mark.skipif(not HAS_MNIST, reason=NO_MNIST),
]
cfg = get_config()
ZS = [[0.0, 0.0], [1.5, -0.5], [-2.0, 1.0], [0.3, 2.5]]   # fixed latent points for the decoder checks
DIGITS = [0, 1, 2, 7, 42]                                 # fixed test digits (of the 100 the page holds) for the encoder


@pytest.fixture(scope='module')
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox', '--disable-dev-shm-usage'])
        yield b
        b.close()


def explorer_page(site:Path) -> Path:
    "The explorer's page: smalldocs names it after the notebook, Quarto after nbdev's output file."
    for name in ('11b_explorer.html', 'explorer.html'):
        if (site/name).is_file(): return site/name
    raise AssertionError(f'no page for 11b_explorer.ipynb in {site}')


def open_explorer(browser, url:str, allowed:str):
    "Open the explorer at `url` with every request recorded; returns (page, requests, errors) once its hook is ready."
    page = browser.new_page(viewport={'width': 1280, 'height': 1100})
    requests, errors = [], []
    page.on('request', lambda r: requests.append(r.url))
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.route('**/*', lambda route: route.continue_() if route.request.url.startswith((allowed, 'data:'))
               else route.abort())           # nothing leaves the site; a request that tries is recorded above
    page.goto(url)
    page.wait_for_function('window.vaeExplorer && window.vaeExplorer.ready', timeout=20_000)
    return page, requests, errors


@pytest.fixture(scope='module')
def models(site):
    "Lesson 11's 2-D models as Python runs them: the trained ones and the float16 copies the page holds."
    from vae_tutorial.explorer import explorer_models, site_model
    from vae_tutorial.files import load_dataset
    loaded = explorer_models(cfg.nbs_path/'runs', train=False)   # the docs build trained any that were missing
    images, labels = load_dataset('mnist', 'test')
    return {name: (m, site_model(m)) for name, (m, _) in loaded.items()}, images[:100], labels[:100]


def test_loads_from_file_without_network(site, browser):
    page, requests, errors = open_explorer(browser, explorer_page(site).as_uri(), 'file://')
    assert not errors, errors
    assert page.evaluate('vaeExplorer.models()') == ['vae', 'cvae']
    assert page.evaluate('vaeExplorer.digits') == 100
    outside = [u for u in requests if not u.startswith(('file://', 'data:'))]
    assert not outside, f'the page asked the network for: {outside[:5]}'
    assert any(u.endswith('explorer/explorer-data.js') for u in requests)
    page.close()


def test_loads_over_http_without_network(site, browser, tmp_path):
    (tmp_path/'site').symlink_to(site.resolve(), target_is_directory=True)
    with http_server(tmp_path) as base:
        page, requests, errors = open_explorer(browser, base + 'site/' + explorer_page(site).name, base)
        assert not errors, errors
        outside = [u for u in requests if not u.startswith((base, 'data:'))]
        assert not outside, f'the page asked the network for: {outside[:5]}'
        assert page.evaluate('vaeExplorer.decode("vae", [0, 0])')   # it runs
        page.close()


@torch.no_grad()
def test_decoder_matches_python(site, browser, models):
    mods, _, _ = models
    page, _, _ = open_explorer(browser, explorer_page(site).as_uri(), 'file://')
    z = torch.tensor(ZS)
    for name, label in (('vae', 0), ('cvae', 3), ('cvae', 8)):
        trained, twin = mods[name]
        y = torch.full((len(z),), label) if trained.n_classes else None
        js = torch.tensor([page.evaluate('([n, z, y]) => vaeExplorer.decode(n, z, y)', [name, zi, label]) for zi in ZS])
        py = twin.likelihood.mean(twin.decode(z, y)).flatten(1)
        assert (js - py).abs().max() < 1e-3, f'{name}: JavaScript and Python decoders differ by {(js - py).abs().max():.2e}'
        assert (js - trained.likelihood.mean(trained.decode(z, y)).flatten(1)).abs().max() < 1 / 255
    page.close()


@torch.no_grad()
def test_encoder_matches_python(site, browser, models):
    mods, images, labels = models
    page, _, _ = open_explorer(browser, explorer_page(site).as_uri(), 'file://')
    for name in ('vae', 'cvae'):
        trained, twin = mods[name]
        page.evaluate('n => vaeExplorer.setModel(n)', name)
        for i in DIGITS:
            page.evaluate('i => vaeExplorer.pickDigit(i)', i)          # the button's path: the digit becomes the input
            st = page.evaluate('vaeExplorer.state()')
            assert st['digit'] == i and (not trained.n_classes or st['label'] == labels[i])
            x, y = images[i:i + 1].float() / 255, labels[i:i + 1] if trained.n_classes else None
            mean, log_var = twin.encode(x, y)
            assert (torch.tensor(st['posterior']['mean']) - mean[0]).abs().max() < 1e-3, (name, i, st['posterior'], mean)
            assert (torch.tensor(st['posterior']['sigma']) - (log_var[0] / 2).exp()).abs().max() < 1e-3
            assert (torch.tensor(st['posterior']['mean']) - trained.encode(x, y)[0][0]).abs().max() < 5e-3
    page.close()


def test_pointer_decodes_where_it_is(site, browser):
    page, _, _ = open_explorer(browser, explorer_page(site).as_uri(), 'file://')
    page.locator('.vx-plane').scroll_into_view_if_needed()
    images = []
    for z in ([-1.5, 1.0], [1.0, -1.5]):
        pt = page.evaluate('z => vaeExplorer.planePoint(z)', z)
        page.mouse.move(pt['x'], pt['y'])                              # a real pointer move over the canvas
        st = page.evaluate('vaeExplorer.state()')
        assert torch.allclose(torch.tensor(st['z']), torch.tensor(z), atol=0.05), (st['z'], z)
        shown = page.evaluate('''() => { const c = document.querySelector('.vx-decoded');
            return Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 == 0)); }''')
        assert max(abs(a - round(255 * b)) for a, b in zip(shown, st['decoded'])) <= 1   # the canvas shows the decoded means
        images.append(torch.tensor(st['decoded']))
    assert (images[0] - images[1]).abs().max() > 0.3, 'two latent points decoded to the same image'
    page.close()


def draw(page, strokes):
    "Draw strokes (lists of points in [0, 1]² of the board) with the mouse."
    box = page.locator('.vx-board').bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box['x'] + x * box['width'], box['y'] + y * box['height'])
        page.mouse.down()
        for x, y in stroke[1:]: page.mouse.move(box['x'] + x * box['width'], box['y'] + y * box['height'], steps=4)
        page.mouse.up()


def test_drawing_moves_the_posterior(site, browser):
    import math
    page, _, errors = open_explorer(browser, explorer_page(site).as_uri(), 'file://')
    page.locator('.vx-board').scroll_into_view_if_needed()
    assert page.evaluate('vaeExplorer.state().posterior') is None          # an empty board: no posterior
    draw(page, [[(0.5, 0.2), (0.5, 0.8)]])                                  # a 1
    one = page.evaluate('vaeExplorer.state()')
    page.click('.vx-clear')
    assert page.evaluate('vaeExplorer.state().posterior') is None
    draw(page, [[(0.5 + 0.25 * math.sin(t / 12 * 2 * math.pi), 0.5 - 0.3 * math.cos(t / 12 * 2 * math.pi)) for t in range(13)]])  # a 0
    zero = page.evaluate('vaeExplorer.state()')
    assert not errors, errors
    for st in (one, zero):
        assert st['input'] and max(st['input']) > 0.5 and len(st['input']) == 784
        mean = page.evaluate('([x]) => vaeExplorer.encode("vae", x).mean', [st['input']])  # the ellipse is q(z|drawing)
        assert torch.allclose(torch.tensor(st['posterior']['mean']), torch.tensor(mean), atol=1e-6)
    moved = math.dist(one['posterior']['mean'], zero['posterior']['mean'])
    assert moved > 0.5, f'the posterior mean moved by only {moved:.2f} between a drawn 1 and a drawn 0'
    page.add_style_tag(content='#quarto-header, header { display: none !important; }')   # the site's sticky bar would cover it
    page.locator('.vae-explorer').screenshot(path=str(site/'screenshot_explorer.png'))
    assert (site/'screenshot_explorer.png').stat().st_size > 20_000
    page.close()


def test_standalone_page(browser, tmp_path, site):
    "`build_explorer(..., page=True)` writes a folder whose explorer.html runs on its own (no site around it)."
    from vae_tutorial.explorer import build_explorer
    built = build_explorer(tmp_path/'mine', cfg.nbs_path/'runs', page=True, train=False)
    assert {'explorer.html', 'explorer.js', 'explorer.css', 'explorer-data.js'} <= set(built)
    assert built['explorer-data.js'] < 4e6, f"the models take {built['explorer-data.js'] / 1e6:.1f} MB"
    assert max(e['decoded'] for e in built['rounding'].values()) < 1 / 255
    page, requests, errors = open_explorer(browser, (tmp_path/'mine'/'explorer.html').as_uri(), 'file://')
    assert not errors and page.evaluate('vaeExplorer.models()') == ['vae', 'cvae']
    assert all(u.startswith('file://') for u in requests), requests
    page.close()
