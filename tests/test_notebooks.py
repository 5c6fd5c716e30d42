"""Each notebook in `nbs/` is one test: every cell runs, in order, in a fresh shell, and its
`test_eq`/`assert` cells must pass. Cells flagged with `settings.ini`'s `tst_flags`
(`notest slow gpu`) are skipped; name flags in `VAE_TUTORIAL_FORCE_FLAGS` (e.g. `slow`) to run them."""
import os

import pytest
from nbdev.config import get_config
from nbdev import test as nbdev_test  # imported as a module so pytest does not collect `test_nb` itself

cfg = get_config()
NOTEBOOKS = sorted(p for p in cfg.nbs_path.glob('*.ipynb') if not p.name.startswith('_'))


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 4, f'expected the tutorial notebooks in {cfg.nbs_path}, found {NOTEBOOKS}'


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook(nb):
    ok, secs = nbdev_test.test_nb(nb, skip_flags=cfg.tst_flags.split(),
                       force_flags=os.environ.get('VAE_TUTORIAL_FORCE_FLAGS', '').split())
    assert ok, f'{nb.name} failed after {secs:.1f} s: its traceback is printed above'
