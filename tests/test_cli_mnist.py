"""Integration: one epoch of real MNIST through the `vae-tutorial` command, when real data is available.

CI sets VAE_TUTORIAL_DATA to the shared datasets folder; elsewhere this test is skipped with the reason shown."""
import json
import subprocess
import sys

import pytest

from conftest import HAS_MNIST, MNIST_ROOT, NO_MNIST


@pytest.mark.skipif(not HAS_MNIST, reason=NO_MNIST)
def test_train_one_epoch_on_mnist(tmp_path):
    out = tmp_path / 'run'
    cmd = [sys.executable, '-m', 'vae_tutorial.cli', 'train', '--dataset', 'mnist', '--data-dir', str(MNIST_ROOT), '--no-download',
           '--epochs', '1', '--device', 'cpu', '--seed', '0', '--out', str(out), '--no-progress']
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout + res.stderr
    for name in ['checkpoint.pt', 'config.json', 'metrics.json', 'reconstructions_train.png', 'reconstructions_test.png',
                 'samples.png', 'loss_curves.png', 'encoding.png']:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, f'{name} missing'
    metrics = json.loads((out / 'metrics.json').read_text())
    (epoch,) = metrics['epochs']
    assert {'epoch', 'train_loss', 'test_loss', 'test_recon', 'test_kl', 'seconds'} <= epoch.keys()
    assert metrics['test_loss'] == epoch['test_loss'] < 200, f"test loss {metrics['test_loss']:.2f} nats per example"
    assert abs(epoch['test_loss'] - (epoch['test_recon'] + epoch['test_kl'])) < 1e-6
    assert 'test loss after epoch 1' in res.stdout


def test_bad_values_rejected():
    for args, msg in [(['--epochs', '-2'], 'must be at least 1'), (['--latent-dim', '0'], 'must be at least 1'),
                      (['--dataset', 'svhn'], 'sub-folders of class folders), got svhn')]:
        res = subprocess.run([sys.executable, '-m', 'vae_tutorial.cli', 'train', *args], capture_output=True, text=True)
        assert res.returncode == 2 and msg in res.stderr, res.stderr
