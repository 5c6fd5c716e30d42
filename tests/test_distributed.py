"""Distributed training with torchrun on 2 CPU processes (gloo), against one process: the same numbers within stated
tolerances, files written once by rank 0, distributed evaluation, --resume, and a killed process (notebook 05b)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vae_tutorial.config import load_checkpoint
from vae_tutorial.files import toy_image_folder

TINY = ['--hidden', '32', '--latent-dim', '4', '--batch-size', '16', '--seed', '3', '--device', 'cpu', '--no-progress']
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}


def one(*args, cwd):
    "`python -m vae_tutorial ...` in one process: (exit code, output)."
    p = subprocess.run([sys.executable, '-m', 'vae_tutorial', *map(str, args)], cwd=cwd, capture_output=True, text=True, env=ENV)
    return p.returncode, p.stdout + p.stderr


def two(*args, cwd):
    "`torchrun --standalone --nproc-per-node 2 -m vae_tutorial ...`: (exit code, output)."
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2', '-m', 'vae_tutorial',
           *map(str, args)]
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=ENV)
    return p.returncode, p.stdout + p.stderr


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return toy_image_folder(tmp_path_factory.mktemp('toy') / 'data', n_train=40, n_test=20)   # 80 + 40 images, 3×8×8


@pytest.fixture(scope='module')
def runs(data, tmp_path_factory):
    "The same 2-epoch run on one process and on two."
    d = tmp_path_factory.mktemp('runs')
    res = {}
    for name, launch in (('one', one), ('two', two)):
        code, out = launch('train', '--dataset', f'folder:{data}', '--epochs', 2, *TINY, '--out', d / name, cwd=d)
        assert code == 0, out
        res[name] = (d / name, out)
    return res


def test_same_losses_files_once(runs):
    (d1, _), (d2, out2) = runs['one'], runs['two']
    m1, m2 = (json.loads((d / 'metrics.json').read_text())['epochs'] for d in (d1, d2))
    for r1, r2 in zip(m1, m2):
        for key in ('train_loss', 'test_loss', 'test_recon', 'test_kl'):
            # the data, its order and the weights are identical; only ε of z differs between the processes' draws: 3%
            assert abs(r1[key] - r2[key]) <= 0.03 * abs(r1[key]) + 0.5, (key, r1[key], r2[key])
    assert sorted(p.name for p in d1.iterdir()) == sorted(p.name for p in d2.iterdir())
    assert out2.count('epoch   1:') == 1 and out2.count('test loss after epoch 2') == 1, out2   # rank 0 alone prints
    assert json.loads((d2 / 'config.json').read_text())['world_size'] == 2
    assert len(load_checkpoint(d2 / 'checkpoint.pt')['rng_ranks']) == 2


def test_distributed_evaluation(runs, tmp_path):
    ckpt = runs['two'][0] / 'checkpoint.pt'
    code1, out1 = one('evaluate', ckpt, '--iw-samples', 20, '--out', tmp_path / 'e1.json', '--no-progress', cwd=tmp_path)
    code2, out2 = two('evaluate', ckpt, '--iw-samples', 20, '--out', tmp_path / 'e2.json', '--no-progress', cwd=tmp_path)
    assert code1 == 0 and code2 == 0, out1 + out2
    e1, e2 = (json.loads((tmp_path / f).read_text()) for f in ('e1.json', 'e2.json'))
    assert e1['n_examples'] == e2['n_examples'] == 40                                  # every test image, once
    assert e1['active_units'] == e2['active_units']
    for key in ('test_elbo', 'test_nll'):   # the same images and model; different ε: within 3 standard errors
        assert abs(e1[key] - e2[key]) < 3 * e1[f'{key}_se'], (key, e1[key], e2[key], e1[f'{key}_se'])
    assert out2.count('test NLL estimate') == 1


def test_resume_continues_exactly(data, runs, tmp_path):
    code, out = two('train', '--dataset', f'folder:{data}', '--epochs', 1, *TINY, '--out', tmp_path / 'r', cwd=tmp_path)
    assert code == 0, out
    code, out = two('train', '--dataset', f'folder:{data}', '--epochs', 2, *TINY, '--out', tmp_path / 'r', '--resume',
                    cwd=tmp_path)
    assert code == 0 and 'resuming' in out, out
    strip = lambda h: [{k: v for k, v in r.items() if 'seconds' not in k} for r in h]
    resumed = json.loads((tmp_path / 'r' / 'metrics.json').read_text())['epochs']
    straight = json.loads((runs['two'][0] / 'metrics.json').read_text())['epochs']
    assert strip(resumed) == strip(straight)                 # every process's generators were restored


@pytest.mark.parametrize('rank, sig', [('1', signal.SIGKILL),    # a process dies: the survivor loses its peer, or torchrun ends it
                                       ('0', signal.SIGTERM)])   # torchrun's way of ending a process: the handler says why
def test_killed_process(data, tmp_path, rank, sig):
    out_dir = tmp_path / 'k'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2', '-m', 'vae_tutorial',
           'train', '--dataset', f'folder:{data}', '--epochs', '400', *TINY, '--out', str(out_dir)]
    p = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    try:
        deadline = time.time() + 120
        while not (out_dir / 'checkpoint.pt').exists() and time.time() < deadline and p.poll() is None: time.sleep(0.2)
        assert (out_dir / 'checkpoint.pt').exists(), 'no checkpoint written'
        time.sleep(1)
        workers = [pid for pid in map(int, filter(str.isdigit, os.listdir('/proc')))
                   if _env(pid).get('RANK') == rank and _env(pid).get('TORCHELASTIC_RUN_ID')]
        assert workers, f'rank {rank} not found'
        os.kill(workers[0], sig)
        out, _ = p.communicate(timeout=300)
    finally:
        if p.poll() is None: p.kill()
    assert p.returncode != 0
    assert 'error: another process of this distributed run stopped' in out, out[-3000:]   # said by a survivor
    if sig == signal.SIGTERM: assert 'torchrun ended this one' in out, out[-3000:]   # the ended process says why it stops
    state = load_checkpoint(out_dir / 'checkpoint.pt')      # intact: a complete, loadable checkpoint
    assert 1 <= len(state['history']) < 400


def _env(pid):
    "The environment of process `pid` (empty if it is gone or not ours)."
    try: raw = Path(f'/proc/{pid}/environ').read_bytes()
    except OSError: return {}
    return dict(kv.split('=', 1) for kv in raw.decode(errors='replace').split('\0') if '=' in kv)


@pytest.mark.parametrize('model,size', [
    (['--arch', 'conv', '--hidden', '8', '16', '--latent-dim', '4', '--likelihood', 'discretized-gaussian',
      '--objective', 'iwae', '--iw-k', '3', '--grad', 'dreg'], 8),
    (['--arch', 'whitened', '--likelihood', 'whitened-gaussian', '--hidden', '16', '--latent-dim', '2'], 4),  # 48 < 80 images
], ids=['conv-iwae-dreg', 'whitened'])
def test_other_models_and_objectives(model, size, tmp_path):
    "A convolutional model with the DReG gradient of the IWAE bound, and the whitened model, on 2 processes vs 1."
    data = toy_image_folder(tmp_path / 'data', n_train=40, n_test=20, size=size)
    args = ['--dataset', f'folder:{data}', '--epochs', 2, *model, '--batch-size', '16', '--seed', '3', '--device', 'cpu',
            '--no-progress']
    (c1, o1), (c2, o2) = one('train', *args, '--out', tmp_path / 'one', cwd=tmp_path), two('train', *args, '--out', tmp_path / 'two', cwd=tmp_path)
    assert c1 == 0 and c2 == 0, o1 + o2
    m1, m2 = (json.loads((tmp_path / d / 'metrics.json').read_text())['epochs'][-1] for d in ('one', 'two'))
    for key in ('train_loss', 'test_loss'):
        assert abs(m1[key] - m2[key]) <= 0.03 * abs(m1[key]) + 0.5, (key, m1[key], m2[key])


def test_compiled_loss_under_ddp(data, runs, tmp_path):
    "torch.compile'd loss inside DDP (the speed engine's path on GPUs, forced here on the CPU): the same run as uncompiled."
    code, out = two('train', '--dataset', f'folder:{data}', '--epochs', 2, *TINY, '--compile', 'default', '--out',
                    tmp_path / 'c', cwd=tmp_path)
    assert code == 0, out
    assert 'compiled (default)' in out and 'torch.compile is not available' not in out, out[-2000:]
    compiled = json.loads((tmp_path / 'c' / 'metrics.json').read_text())['epochs']
    eager = json.loads((runs['two'][0] / 'metrics.json').read_text())['epochs']
    for r1, r2 in zip(compiled, eager):     # the same ε (inductor's fallback_random), fused kernels: float32 rounding only
        for key in ('train_loss', 'test_loss'): assert abs(r1[key] - r2[key]) < 1e-3 * abs(r2[key]), (key, r1[key], r2[key])
