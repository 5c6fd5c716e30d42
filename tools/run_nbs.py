"""Execute notebooks in place and save their outputs (figures included), as the docs site shows them.

Cells flagged with any of `settings.ini`'s `tst_flags` (`notest slow gpu`) are skipped unless named
in `--force`; `gpu` cells are run only when CUDA is available. Examples:

    python tools/run_nbs.py nbs/00_elbo.ipynb
    python tools/run_nbs.py nbs/10_mnist.ipynb --force slow
"""
import argparse, os, re, sys, time
from pathlib import Path

from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from nbdev.config import get_config
from nbdev.process import NBProcessor


def skip_cell(flags):
    """A `preproc` for `CaptureShell.run_all` that skips non-code cells, `#| eval: false` cells, cells with any of `flags`,
    and the `nbdev_export()` cell at the end of a notebook (as nbdev_test does: exporting is a separate step)."""
    def _skip(cell):
        if cell.cell_type != 'code' or 'nbdev_export(' in cell.source: return True
        directives = getattr(cell, 'directives_', {}) or {}
        if directives.get('eval:', [''])[0].lower() == 'false': return True
        return bool(flags & directives.keys())
    return _skip


PROGRESS = re.compile(r'(\r?[^\r\n]*\d+%\|[^\r\n]*\|[^\r\n]*[\r\n]*)+')   # tqdm frames: 'desc:  42%|####  | 42/100 [...]'


def drop_progress(outputs):
    "The outputs without progress-bar frames: they record a moment of the run, not a result, and would show in the docs."
    return [o for o in outputs if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr'
                                       and PROGRESS.fullmatch(''.join(o.get('text', ''))))]


def run_nb(path, flags):
    "Run the notebook at `path` in its own folder, skipping `flags`, and write its outputs back."
    nb = NBProcessor(path, procs=[], process=True).nb  # parses `#|` directives only
    shell = CaptureShell(path)
    start, cwd = time.time(), os.getcwd()
    os.chdir(path.parent)
    try: shell.run_all(nb, exc_stop=True, preproc=skip_cell(flags))
    finally: os.chdir(cwd)
    raw = read_nb(path)
    for cell, done in zip(raw.cells, nb.cells):
        if cell.cell_type == 'code':
            cell.outputs, cell.execution_count = drop_progress(done.get('outputs', [])), done.get('execution_count')
    write_nb(raw, path)
    return time.time() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebooks', nargs='+', type=Path, help='notebooks to execute in place')
    p.add_argument('--force', nargs='*', default=[], help='flags whose cells are run anyway (e.g. slow)')
    a = p.parse_args()
    import torch
    flags = set(get_config().tst_flags.split()) - set(a.force)
    if 'gpu' not in flags and not torch.cuda.is_available(): sys.exit('--force gpu needs a CUDA device')
    os.environ.setdefault('MPLBACKEND', 'module://matplotlib_inline.backend_inline')
    for nb in a.notebooks:
        print(f'{nb}: {run_nb(nb.resolve(), flags):.1f} s')


if __name__ == '__main__': main()
