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


@pytest.mark.skipif(not HAS_MNIST, reason=NO_MNIST)
def test_explore_a_2d_model_and_a_conditional_one(tmp_path):
    "`vae-tutorial explore` writes the latent explorer of 2-D MNIST models (tests/test_explorer.py runs such a page)."
    import base64
    from vae_tutorial.config import load_checkpoint, model_from_checkpoint
    from vae_tutorial.explorer import site_model, unpack_f16
    from vae_tutorial.files import load_dataset
    base = [sys.executable, '-m', 'vae_tutorial.cli']
    for name, extra in (('plain', []), ('cond', ['--conditional'])):
        res = subprocess.run(base + ['train', '--dataset', 'mnist', '--data-dir', str(MNIST_ROOT), '--no-download',
                                     '--latent-dim', '2', '--hidden', '32', '--epochs', '1', '--device', 'cpu', '--no-progress',
                                     '--out', str(tmp_path / name), *extra], capture_output=True, text=True, timeout=1200)
        assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run(base + ['explore', str(tmp_path / 'plain' / 'checkpoint.pt'), str(tmp_path / 'cond' / 'checkpoint.pt'),
                                 '--n-means', '300', '--data-dir', str(MNIST_ROOT), '--out', str(tmp_path / 'ex')],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and 'explorer.html with 2 model(s), plain, cond' in res.stdout, res.stdout + res.stderr
    text = (tmp_path / 'ex' / 'explorer-data.js').read_text()
    data = json.loads(text.removeprefix('window.VAE_EXPLORER_DATA = ').removesuffix(';\n'))
    assert list(data['models']) == ['plain', 'cond'] and data['models']['cond']['n_classes'] == 10
    images, labels = load_dataset('mnist', 'test', MNIST_ROOT)
    twin = site_model(model_from_checkpoint(load_checkpoint(tmp_path / 'cond' / 'checkpoint.pt')))
    means = unpack_f16(data['models']['cond']['scatter']['means'], (300, 2))
    assert abs(means - twin.encode(images[:300].float() / 255, labels[:300])[0].detach()).max() < 5e-3   # the scatter is q's means
    assert base64.b64decode(data['digits']['pixels']) == images[:100].numpy().tobytes()
    assert 'data-model="cond"' in (tmp_path / 'ex' / 'explorer.html').read_text()
