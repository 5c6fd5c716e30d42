"""The MNIST quality benchmark script (benchmarks/mnist_quality.py) end to end, at a tiny size: the `gpu` cell of
06d_benchmark runs the same script at full length. Needs the MNIST files (VAE_TUTORIAL_DATA, as in CI)."""
import importlib.util
import json
import math
from pathlib import Path

import pytest

from conftest import run_script, HAS_MNIST, NO_MNIST

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'benchmarks' / 'mnist_quality.py'


def bench(*args, cwd):
    "Run the benchmark script; return (exit code, stdout + stderr)."
    return run_script(SCRIPT, *args, cwd=cwd)


@pytest.mark.skipif(not HAS_MNIST, reason=NO_MNIST)
def test_tiny_benchmark_and_merge(tmp_path):
    tiny = ['--epochs', 1, '--hidden', 16, '--latent-dim', 4, '--eval-k', 8, '--eval-n', 40, '--trend-k', 4,
            '--trend-n', 20, '--chunk', 8, '--device', 'cpu', '--threads', 1, '--runs', tmp_path / 'runs', '--no-progress']
    code, out = bench('--configs', 'vae', '--out', tmp_path / 'vae.json', *tiny, cwd=tmp_path)
    assert code == 0, out
    code, out = bench('--configs', 'iwae3,iwae3-dreg', '--out', tmp_path / 'iwae3.json', *tiny, cwd=tmp_path)
    assert code == 0, out
    code, out = bench('--merge', tmp_path / 'vae.json', tmp_path / 'iwae3.json', '--out', tmp_path / 'all.json', cwd=tmp_path)
    assert code == 0, out
    merged = json.loads((tmp_path / 'all.json').read_text())
    assert [r['config'] for r in merged['results']] == ['vae', 'iwae3', 'iwae3-dreg']
    for r in merged['results']:
        assert r['epochs'] == 1 and r['eval_examples'] == 40 and r['k'] == 8 == merged['eval_k']
        assert r['test_nll'] <= -r['test_elbo'] + 1e-6, 'the k-sample bound must not be looser than the ELBO'
        assert 80 < r['test_nll'] < 544, r['test_nll']   # better than coin flips (784 ln 2 = 543.4 nats), not better than SOTA
        assert 0 < r['test_nll_se'] < 20 and 0 < r['test_elbo_se'] < 20      # standard errors across the 40 test images
        assert 0 <= r['mutual_information'] <= math.log(40) + 1e-6
        assert len(r['history']) == 1 and 'test_nll_k4' in r['history'][0]
        assert 0 < r['history'][0]['test_nll_k4_se'] < 30                     # the trend's standard error, 20 images
        assert (tmp_path / 'runs' / r['config'] / 'checkpoint.pt').is_file()
    assert [(r['objective'], r['iw_k'], r['grad']) for r in merged['results'][1:]] == [('iwae', 3, 'iwae'), ('iwae', 3, 'dreg')]
    assert 'nats per example' in out and 'vae' in out and 'iwae3-dreg' in out and '± ' in out


@pytest.mark.skipif(not HAS_MNIST, reason=NO_MNIST)
def test_refuses_to_overwrite_and_resumes(tmp_path):
    tiny = ['--configs', 'vae', '--hidden', 16, '--latent-dim', 4, '--eval-k', 4, '--eval-n', 20, '--trend-k', 0,
            '--device', 'cpu', '--runs', tmp_path / 'runs', '--no-progress', '--out', tmp_path / 'r.json']
    code, out = bench('--epochs', 1, *tiny, cwd=tmp_path)
    assert code == 0, out
    before = (tmp_path / 'runs' / 'vae' / 'checkpoint.pt').read_bytes()
    code, out = bench('--epochs', 2, *tiny, cwd=tmp_path)
    assert code != 0 and 'pass --resume' in out, out
    assert (tmp_path / 'runs' / 'vae' / 'checkpoint.pt').read_bytes() == before        # nothing was changed
    code, out = bench('--epochs', 2, '--resume', *tiny, cwd=tmp_path)
    assert code == 0 and 'resuming after epoch 1' in out, out
    r = json.loads((tmp_path / 'r.json').read_text())['results'][0]
    assert [e['epoch'] for e in r['history']] == [1, 2]
    assert r['history'][1]['wall_seconds'] > r['history'][0]['wall_seconds']        # the clock continues


@pytest.mark.skipif(not HAS_MNIST, reason=NO_MNIST)
def test_wall_clock_budget(tmp_path):
    "A budget shorter than one epoch: the first epoch runs, the second would overrun it and is not started."
    code, out = bench('--configs', 'vae', '--budget-minutes', 0.001, '--hidden', 16, '--latent-dim', 4, '--eval-k', 4,
                      '--eval-n', 20, '--trend-k', 0, '--device', 'cpu', '--runs', tmp_path / 'runs', '--no-progress',
                      '--out', tmp_path / 'b.json', cwd=tmp_path)
    assert code == 0, out
    r = json.loads((tmp_path / 'b.json').read_text())['results'][0]
    assert r['epochs'] == 1 and r['lr_schedule'] == 'exp-time' and 'next epoch would pass' in out, out
    assert r['history'][0]['lr'] == pytest.approx(1e-3)                              # the decay starts at --lr


def test_unknown_configuration_rejected(tmp_path):
    code, out = bench('--configs', 'vae,iwaeX', '--out', tmp_path / 'x.json', '--device', 'cpu', cwd=tmp_path)
    assert code != 0 and "unknown configuration 'iwaeX'" in out, out
    code, out = bench('--configs', 'iwae5-vimco', '--out', tmp_path / 'x.json', '--device', 'cpu', cwd=tmp_path)
    assert code != 0 and "unknown configuration 'iwae5-vimco'" in out, out
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
