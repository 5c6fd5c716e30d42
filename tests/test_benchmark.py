"""The MNIST quality benchmark script (benchmarks/mnist_quality.py) end to end, at a tiny size: the `gpu` cell of
06_evaluate runs the same script at full length. Needs the MNIST files (VAE_TUTORIAL_DATA, as in CI)."""
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HAS_MNIST, NO_MNIST

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'benchmarks' / 'mnist_quality.py'


def bench(*args, cwd):
    "Run the benchmark script; return (exit code, stdout + stderr)."
    p = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.skipif(not HAS_MNIST, reason=NO_MNIST)
def test_tiny_benchmark_and_merge(tmp_path):
    tiny = ['--epochs', 1, '--hidden', 16, '--latent-dim', 4, '--eval-k', 8, '--eval-n', 40, '--trend-k', 4,
            '--trend-n', 20, '--chunk', 8, '--device', 'cpu', '--threads', 1, '--runs', tmp_path / 'runs', '--no-progress']
    code, out = bench('--configs', 'vae', '--out', tmp_path / 'vae.json', *tiny, cwd=tmp_path)
    assert code == 0, out
    code, out = bench('--configs', 'iwae3', '--out', tmp_path / 'iwae3.json', *tiny, cwd=tmp_path)
    assert code == 0, out
    code, out = bench('--merge', tmp_path / 'vae.json', tmp_path / 'iwae3.json', '--out', tmp_path / 'both.json', cwd=tmp_path)
    assert code == 0, out
    both = json.loads((tmp_path / 'both.json').read_text())
    assert [r['config'] for r in both['results']] == ['vae', 'iwae3']
    for r in both['results']:
        assert r['epochs'] == 1 and r['eval_examples'] == 40 and r['k'] == 8 == both['eval_k']
        assert r['test_nll'] <= -r['test_elbo'] + 1e-6, 'the k-sample bound must not be looser than the ELBO'
        assert 80 < r['test_nll'] < 544, r['test_nll']   # better than coin flips (784 ln 2 = 543.4 nats), not better than SOTA
        assert len(r['history']) == 1 and 'test_nll_k4' in r['history'][0]
        assert (tmp_path / 'runs' / r['config'] / 'checkpoint.pt').is_file()
    assert both['results'][1]['objective'] == 'iwae' and both['results'][1]['iw_k'] == 3
    assert 'nats per example' in out and 'vae' in out and 'iwae3' in out


def test_unknown_configuration_rejected(tmp_path):
    code, out = bench('--configs', 'vae,iwaeX', '--out', tmp_path / 'x.json', '--device', 'cpu', cwd=tmp_path)
    assert code != 0 and "unknown configuration 'iwaeX'" in out, out
    assert not (tmp_path / 'x.json').exists()


def test_burda_schedule():
    spec = importlib.util.spec_from_file_location('mnist_quality', SCRIPT)
    bench_mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench_mod)
    lrs = [bench_mod.burda_lr(e, 3280, 1e-3) for e in range(1, 3282)]   # the original length: stages of 1, 3, 9, ... epochs
    assert [lrs.count(lr) for lr in sorted(set(lrs), reverse=True)] == [1, 3, 9, 27, 81, 243, 729, 2187 + 1]
    assert math.isclose(lrs[0], 1e-3) and math.isclose(lrs[-1], 1e-3 * 10 ** -1)
    short = [bench_mod.burda_lr(e, 1000, 1e-3) for e in range(1, 1002)]  # compressed: the first stage still runs
    assert math.isclose(short[0], 1e-3) and math.isclose(short[-1], 1e-3 * 10 ** -1)
    assert all(a >= b for a, b in zip(short, short[1:]))
