"""Write README.md from nbs/index.ipynb (nbdev's `nbdev_readme` needs Quarto, which is not always installed).

Markdown cells are copied; code cells flagged `#| hide` are dropped; `#| echo: false` cells contribute only their
outputs (markdown, else plain text); other code cells appear as Python blocks followed by their outputs.
Links to notebooks (`NAME.ipynb`) point into `nbs/`. `--check` fails if README.md is out of date.

    python tools/make_readme.py [--check]
"""
import argparse, re, sys
from pathlib import Path

from execnb.nbio import read_nb
from nbdev.config import get_config
from nbdev.process import NBProcessor


def output_text(outputs):
    "The readable text of a code cell's outputs: markdown if present, else plain text or streams."
    parts = []
    for o in outputs:
        data = o.get('data', {})
        if 'text/markdown' in data: parts.append(''.join(data['text/markdown']))
        elif o.get('output_type') == 'stream': parts.append('```\n' + ''.join(o['text']).rstrip() + '\n```')
        elif 'text/plain' in data: parts.append('```\n' + ''.join(data['text/plain']).rstrip() + '\n```')
    return '\n\n'.join(parts)


def render(nb_path:Path) -> str:
    "GitHub markdown for the notebook at `nb_path`."
    nb = NBProcessor(nb_path, procs=[], process=True).nb
    raw = read_nb(nb_path)
    blocks = []
    for cell, rawcell in zip(nb.cells, raw.cells):
        d = getattr(cell, 'directives_', {}) or {}
        if cell.cell_type == 'markdown':
            blocks.append(re.sub(r'\]\((\w+)\.ipynb\)', r'](nbs/\1.ipynb)', cell.source))
            continue
        if 'hide' in d: continue
        if d.get('echo:', [''])[0].lower() != 'false' and cell.source.strip():
            blocks.append('```python\n' + cell.source.strip() + '\n```')
        out = output_text(rawcell.get('outputs', []))
        if out: blocks.append(out)
    return '\n\n'.join(blocks).strip() + '\n'


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--check', action='store_true', help='fail if README.md differs from what index.ipynb gives')
    a = p.parse_args()
    cfg = get_config()
    text = render(cfg.nbs_path / cfg.readme_nb)
    readme = cfg.config_path / 'README.md'
    if a.check:
        if not readme.is_file() or readme.read_text(encoding='utf-8') != text:
            sys.exit('README.md is out of date with nbs/index.ipynb: run python tools/make_readme.py and commit it')
        print('README.md is up to date')
    else: readme.write_text(text, encoding='utf-8'); print(f'wrote {readme}')


if __name__ == '__main__': main()
