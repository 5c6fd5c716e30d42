"""The README's Python quickstart runs as it stands (on the real MNIST, which CI has) and prints what it says."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HAS_MNIST, NO_MNIST

README = Path(__file__).resolve().parents[1] / 'README.md'


def quickstart()->str:
    "The ```python block of the README's 'In Python' section."
    text = README.read_text(encoding='utf-8')
    section = text.split('## In Python', 1)[1].split('\n## ', 1)[0]
    blocks = re.findall(r'```python\n(.*?)```', section, re.S)
    assert len(blocks) == 1, f'expected one python block in the README\'s "In Python" section, found {len(blocks)}'
    return blocks[0]


def test_quickstart_is_short():
    lines = [l for l in quickstart().splitlines() if l.strip()]
    assert len(lines) <= 12, f'the quickstart has {len(lines)} lines'


@pytest.mark.skipif(not HAS_MNIST, reason=NO_MNIST)
def test_quickstart_runs(tmp_path):
    env = {**os.environ, 'MPLBACKEND': 'Agg'}
    res = subprocess.run([sys.executable, '-c', quickstart()], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    m = re.search(r'test NLL ([\d.]+) ± ([\d.]+) nats per example \(k = 100, test split\)', res.stdout)
    assert m, res.stdout[-2000:]
    nll, se = map(float, m.groups())
    assert 80 < nll < 130 and 0 < se < 2, (nll, se)   # two epochs of a 784-256-10 VAE: near 100 nats
    assert 'epoch   2: train loss' in res.stdout
