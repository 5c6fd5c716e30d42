"""The CIFAR-10 quality benchmark script (benchmarks/cifar10_quality.py) end to end, at a tiny size, on a toy image folder:
the closed-form Gaussian baselines and a whitened VAE trained from them. The kept CPU run (nbs/results/cifar10_whitened.json)
is the same script at full length."""
import json
from pathlib import Path

from conftest import run_script
from vae_tutorial.files import toy_image_folder

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'benchmarks' / 'cifar10_quality.py'


def bench(*args, cwd):
    "Run the benchmark script; return (exit code, stdout + stderr)."
    return run_script(SCRIPT, *args, cwd=cwd)


def test_tiny_cifar10_benchmark(tmp_path):
    data = toy_image_folder(tmp_path / 'data', n_train=40, n_test=10, size=4)   # 80 training images of 3·4·4 = 48 numbers
    out = tmp_path / 'white.json'
    code, log = bench('--dataset', f'folder:{data}', '--epochs', 2, '--hidden', 16, '--latent-dim', 2, '--k', 4,
                      '--n-eval', 20, '--batch-size', 16, '--runs', tmp_path / 'runs', '--out', out, '--no-progress', cwd=tmp_path)
    assert code == 0, log
    r = json.loads(out.read_text())
    assert list(r['baselines']) == ['diagonal Gaussian', 'full-covariance Gaussian'], list(r['baselines'])  # L ≥ D: no PPCA
    full = r['baselines']['full-covariance Gaussian']['bits_per_dim']
    assert full < r['baselines']['diagonal Gaussian']['bits_per_dim']
    t = r['test_report']
    assert (t['k'], t['n_examples'], len(r['epochs']), r['config']['config']['arch']) == (4, 20, 2, 'whitened')
    assert abs(t['bits_per_dim'] - full) < 0.5, (t['bits_per_dim'], full)   # two epochs from the Gaussian fit
    assert 'whitened VAE -L_4' in log and 'full-covariance Gaussian' in log


def test_too_few_training_images(tmp_path):
    data = toy_image_folder(tmp_path / 'data', n_train=12, n_test=6, size=8)    # 24 images of 192 numbers
    code, log = bench('--dataset', f'folder:{data}', '--out', tmp_path / 'w.json', '--no-progress', cwd=tmp_path)
    assert code != 0 and 'needs more than 192 training images, got 24' in log, log
    assert not (tmp_path / 'w.json').exists()
