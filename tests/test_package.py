"""The installed package: it imports, and every exported function documents its parameters."""
import dataclasses
import importlib
import inspect

import pytest
from fastcore.docments import docments

import vae_tutorial
from vae_tutorial._modidx import d as modidx

MODULES = sorted(m for m in modidx['syms'])


def test_version():
    assert vae_tutorial.__version__.count('.') == 2


@pytest.mark.parametrize('modname', MODULES)
def test_exports_have_docments(modname):
    mod = importlib.import_module(modname)
    missing = []
    for name in getattr(mod, '__all__', []):
        obj = getattr(mod, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)): continue
        if not inspect.getdoc(obj): missing.append(f'{name}: no docstring')
        if dataclasses.is_dataclass(obj):  # the generated __init__ has no source: the fields carry the docments
            docs = docments(obj)
            missing += [f'{name}.{f.name}: no docment' for f in dataclasses.fields(obj) if not docs.get(f.name)]
            continue
        fn = obj if inspect.isfunction(obj) else obj.__init__
        if fn is object.__init__ or not inspect.isfunction(fn): continue
        params = [p for p in inspect.signature(fn).parameters if p not in ('self', 'cls', 'args', 'kwargs')]
        docs = docments(fn)
        missing += [f'{name}({p}): no docment' for p in params if not docs.get(p)]
    assert not missing, f'{modname}: ' + '; '.join(missing)


def test_no_progress_frames_in_saved_outputs():
    "tqdm frames record a moment of a run, not a result; tools/run_nbs.py drops them, and none may be committed."
    import json
    from nbdev.config import get_config
    bad = [f"{nb.name} cell {i}" for nb in sorted(get_config().nbs_path.glob('*.ipynb'))
           for i, c in enumerate(json.loads(nb.read_text())['cells'])
           for o in c.get('outputs', []) if o.get('output_type') == 'stream' and '%|' in ''.join(o.get('text', ''))]
    assert not bad, f"progress-bar frames saved in: {', '.join(bad)}"


def test_figures_have_alt_text():
    "Every committed figure carries a `#| fig-alt:` (Quarto's and smalldocs' alt text), so the docs describe it to a screen reader."
    import json, re
    from nbdev.config import get_config
    bad = []
    for nb in sorted(get_config().nbs_path.glob('*.ipynb')):
        for i, c in enumerate(json.loads(nb.read_text())['cells']):
            if not any('image/png' in o.get('data', {}) for o in c.get('outputs', [])): continue
            m = re.search(r'^#\|\s*fig-alt:\s*"?([^"\n]*)', ''.join(c['source']), flags=re.M)
            if not m or len(m[1].split()) < 5: bad.append(f'{nb.name} cell {i}')
    assert not bad, f"figures without a fig-alt of at least five words: {', '.join(bad)}"
