"""Hostile input and faults: every probe a user (or an attacker) can throw at `vae-tutorial` ends with one clear line, a
non-zero exit status, and nothing lost — no traceback, no code run from a data file, no run folder clobbered, no
half-written file. All on tiny files made here; no dataset needed."""
import gzip
import json
import os
import pickle
import random
import signal
import struct
import subprocess
import sys
import time
import zlib
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from vae_tutorial import data as vdata
from vae_tutorial.cli import main
from vae_tutorial.config import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def cli(*argv):
    "Run `vae-tutorial ARGV` in this process; return (exit status, everything it printed)."
    out = StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        try: main([str(a) for a in argv]); code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
            if not isinstance(e.code, int) and e.code is not None: out.write(str(e.code))
    return code, out.getvalue()


def no_traceback(text): return 'Traceback' not in text


def image_folder(root, classes=('dark', 'light'), n=6, size=(8, 8), splits=('train', 'test')):
    "root/{train,test}/<class>/*.png: small grey images."
    rng = np.random.default_rng(0)
    for split in splits:
        for c, base in zip(classes, (40, 200, 120)):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = np.clip(base + rng.normal(0, 30, size), 0, 255).astype(np.uint8)
                Image.fromarray(a).save(root / split / c / f'{i:03d}.png')
    return root


@pytest.fixture
def data(tmp_path):
    return image_folder(tmp_path / 'data')


def train_args(data, out, *more, epochs=1):
    return ['train', '--dataset', f'folder:{data}', '--latent-dim', 2, '--hidden', 8, '--batch-size', 4, '--epochs', epochs,
            '--device', 'cpu', '--no-progress', '--out', out, *more]


# ------------------------------------------------------------------------------ 1. no code from a data file

def test_crafted_cifar_batch_runs_nothing(tmp_path):
    folder = tmp_path / 'cifar-10-batches-py'; folder.mkdir()
    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self): return (open, (str(marker), 'w'))

    for name in (*vdata.CIFAR_FILES['train'], *vdata.CIFAR_FILES['test']):
        with open(folder / name, 'wb') as f: pickle.dump({'data': Payload(), 'labels': [0]}, f)
    code, text = cli('train', '--dataset', 'cifar10', '--data-dir', tmp_path, '--no-download', '--device', 'cpu',
                     '--arch', 'conv', '--likelihood', 'discretized-gaussian', '--out', tmp_path / 'run')
    assert code == 1 and 'not the official' in text and no_traceback(text), text
    md5s = {name: vdata.file_md5(folder / name) for name in vdata.CIFAR_MD5}
    with mock.patch.dict(vdata.CIFAR_MD5, md5s):                    # even if its checksums were vouched for
        code, text = cli('train', '--dataset', 'cifar10', '--data-dir', tmp_path, '--no-download', '--device', 'cpu',
                         '--arch', 'conv', '--likelihood', 'discretized-gaussian', '--out', tmp_path / 'run')
    assert code == 1 and 'open' in text and 'not loaded' in text and no_traceback(text), text
    assert not marker.exists(), 'a data file ran code'
    assert not (tmp_path / 'run' / 'checkpoint.pt').exists()


# ------------------------------------------------------------------------------ 2.–5. the run folder

def test_foreign_folder_and_empty_out_refused(data, tmp_path):
    foreign = tmp_path / 'theirs'; foreign.mkdir()
    (foreign / 'config.json').write_text('{"theirs": true}'); (foreign / 'samples.png').write_bytes(b'their png')
    code, text = cli(*train_args(data, foreign))
    assert code == 1 and 'not a vae-tutorial run' in text and '--force' in text and no_traceback(text), text
    assert json.loads((foreign / 'config.json').read_text()) == {'theirs': True}
    assert (foreign / 'samples.png').read_bytes() == b'their png'
    code, text = cli(*train_args(data, ''))
    assert code == 2 and '--out must name a folder' in text, text
    code, text = cli(*train_args(data, foreign, '--force'))
    assert code == 0, text
    assert 'theirs' not in (foreign / 'config.json').read_text()


def test_existing_run_needs_resume_or_force(data, tmp_path):
    out = tmp_path / 'run'
    assert cli(*train_args(data, out))[0] == 0
    before = (out / 'checkpoint.pt').read_bytes()
    code, text = cli(*train_args(data, out, epochs=2))
    assert code == 1 and '--resume' in text and '--force' in text and (out / 'checkpoint.pt').read_bytes() == before
    assert cli(*train_args(data, out, '--force', epochs=2))[0] == 0
    assert len(json.loads((out / 'metrics.json').read_text())['epochs']) == 2


def test_two_runs_cannot_share_a_folder(data, tmp_path):
    out = tmp_path / 'run'
    args = [sys.executable, '-m', 'vae_tutorial.cli', *map(str, train_args(data, out, epochs=200))]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while not (out / 'checkpoint.pt').exists():                 # the first run holds the lock and is training
            assert first.poll() is None and time.time() < deadline, first.stdout.read()
            time.sleep(0.1)
        second = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and 'another vae-tutorial command is using' in second.stderr + second.stdout
    finally:
        first.kill(); first.wait()
    load_checkpoint(out / 'checkpoint.pt')                          # the first run's checkpoint is whole


def test_broken_artefacts_are_repaired(data, tmp_path):
    out = tmp_path / 'run'
    assert cli(*train_args(data, out, epochs=2))[0] == 0
    (out / 'samples.png').write_bytes(b'')                          # a 0-byte figure, as a kill can leave
    (out / 'metrics.json').unlink()
    (out / '.checkpoint.pt.x1y2.tmp').write_bytes(b'x' * 1000)      # a stale temporary of a killed run
    code, text = cli('report', out, '--device', 'cpu')
    assert code == 0 and 'wrote config.json, metrics.json' in text, text
    assert (out / 'samples.png').read_bytes()[:4] == b'\x89PNG'
    assert len(json.loads((out / 'metrics.json').read_text())['epochs']) == 2
    assert not list(out.glob('*.tmp')) and not list(out.glob('.*.tmp'))
    (out / 'loss_curves.png').unlink()
    code, text = cli(*train_args(data, out, '--resume', epochs=2))  # --resume on a finished run repairs too
    assert code == 0 and 'already trained 2 epochs' in text and (out / 'loss_curves.png').is_file(), text


def test_files_have_the_users_permissions(data, tmp_path):
    out = tmp_path / 'run'
    old = os.umask(0o022)
    try: assert cli(*train_args(data, out))[0] == 0
    finally: os.umask(old)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in out.iterdir() if p.is_file() and not p.name.startswith('.')}
    assert set(modes.values()) == {oct(0o644)}, modes


def test_disk_full_loses_nothing(data, tmp_path):
    out = tmp_path / 'run'
    assert cli(*train_args(data, out))[0] == 0
    before = (out / 'checkpoint.pt').read_bytes()
    real_save = torch.save
    def full(obj, f, *a, **k): f.write(b'partial'); raise OSError(28, 'No space left on device')
    with mock.patch.object(torch, 'save', full):
        code, text = cli(*train_args(data, out, '--resume', epochs=2))
    assert torch.save is real_save
    assert code == 1 and 'the disk is full' in text and no_traceback(text), text
    assert (out / 'checkpoint.pt').read_bytes() == before and not list(out.glob('.*.tmp'))
    assert json.loads((out / 'config.json').read_text())['config']['epochs'] == 1   # not rewritten by the failed --resume


# ------------------------------------------------------------------------------ 6. splits that do not belong together

@pytest.mark.parametrize('case, want', [
    ('classes', 'different class folders'), ('shapes', 'different shapes'), ('empty', 'no image files')])
def test_splits_checked(tmp_path, case, want):
    d = tmp_path / 'data'
    image_folder(d, splits=('train',))
    if case == 'classes': image_folder(d, classes=('dark', 'other'), splits=('test',))
    if case == 'shapes': image_folder(d, size=(6, 6), splits=('test',))
    if case == 'empty':
        image_folder(d, splits=('test',))
        for p in (d / 'train').rglob('*.png'): p.unlink()
    code, text = cli(*train_args(d, tmp_path / 'run'))
    assert code == 1 and want in text and no_traceback(text), text
    assert not (tmp_path / 'run' / 'checkpoint.pt').exists()


def test_resume_with_other_data_refused(data, tmp_path):
    out = tmp_path / 'run'
    assert cli(*train_args(data, out))[0] == 0
    assert cli(*train_args(data, out, '--resume', epochs=2))[0] == 0  # the same data: fine
    for p in (data / 'train' / 'dark').glob('00[0-2].png'): p.unlink()  # now change the data under the run
    code, text = cli(*train_args(data, out, '--resume', epochs=3))
    assert code == 1 and 'trained on other data' in text and no_traceback(text), text
    assert len(load_checkpoint(out / 'checkpoint.pt')['history']) == 2


# ------------------------------------------------------------------------------ 7. memory from small inputs

def test_idx_bombs_refused(tmp_path):
    raw = tmp_path / 'MNIST' / 'raw'; raw.mkdir(parents=True)
    with gzip.open(raw / 'train-images-idx3-ubyte.gz', 'wb') as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack('>3I', 1, 28, 28) + bytes(60_000_000))   # 784 promised, 60 MB behind
    for name, payload in (('train-labels-idx1-ubyte', bytes([0, 0, 8, 1]) + struct.pack('>I', 1) + b'\0'),
                          ('t10k-images-idx3-ubyte', bytes([0, 0, 8, 3]) + struct.pack('>3I', 2**32 - 1, 2**32 - 1, 2**32 - 1)),
                          ('t10k-labels-idx1-ubyte', bytes([0, 0, 8, 1]) + struct.pack('>I', 1) + b'\0')):
        (raw / name).write_bytes(payload)
    code, text = cli('train', '--dataset', 'mnist', '--data-dir', tmp_path, '--no-download', '--device', 'cpu',
                     '--out', tmp_path / 'run')
    assert code == 1 and 'holds more' in text and no_traceback(text), text


def test_forged_checkpoint_shape_refused(data, tmp_path):
    out = tmp_path / 'run'
    assert cli(*train_args(data, out))[0] == 0
    state = torch.load(out / 'checkpoint.pt', weights_only=True)
    state['image_shape'] = [1, 1_000_000, 1_000_000]
    torch.save(state, tmp_path / 'forged.pt')
    code, text = cli('sample', tmp_path / 'forged.pt', '--device', 'cpu', '--out', tmp_path / 's.png')
    assert code == 1 and 'damaged or forged' in text and no_traceback(text), text


# ------------------------------------------------------------------------------ 8.–10. a user's mistakes

def png_bomb(path, side=40_000):
    "A PNG whose header claims side × side pixels (a decompression bomb), a few hundred bytes on disk."
    Image.new('L', (8, 8)).save(path)
    b = bytearray(path.read_bytes())
    b[16:24] = struct.pack('>II', side, side)                       # IHDR width, height
    b[29:33] = struct.pack('>I', zlib.crc32(bytes(b[12:29])))      # and its checksum
    path.write_bytes(bytes(b))


@pytest.mark.parametrize('probe, want_code, want', [
    (['--device', 'foo'], 1, 'unknown device'), (['--device', 'mps'], 1, 'unknown device'),
    (['--seed', str(2 ** 70)], 2, 'must be from 0 to 2^63'), (['--seed', '-1'], 2, 'must be from 0 to 2^63'),
    (['--arch', 'conv', '--hidden', 8, 8, 8, 8], 1, 'cannot build this model'),
    (['--hidden', 10 ** 9], 1, 'does not fit in memory'), (['--beta', '0.00'], 0, ''), (['--beta', '-0.1'], 2, 'must be a number'),
])
def test_train_mistakes(data, tmp_path, probe, want_code, want):
    args = train_args(data, tmp_path / 'run')
    for flag in ('--hidden',):
        if flag in probe: i = args.index(flag); del args[i:i + 2]
    code, text = cli(*args, *probe)
    assert code == want_code and want in text and no_traceback(text), text


def test_sample_and_evaluate_mistakes(data, tmp_path):
    out = tmp_path / 'run'
    assert cli(*train_args(data, out))[0] == 0
    ck = out / 'checkpoint.pt'
    for argv, want in ((['sample', ck, '--device', 'cuda:7'], 'device'), (['sample', ck, '--device', 'xpu'], 'unknown device'),
                       (['evaluate', ck, '--device', 'foo'], 'unknown device')):
        code, text = cli(*argv)
        assert code == 1 and want in text and no_traceback(text), (argv, text)
    code, text = cli('sample', ck, '--device', 'cpu', '--out', tmp_path / 'plain', '--n', 4)
    assert code == 0 and str(tmp_path / 'plain.png') in text and (tmp_path / 'plain.png').is_file(), text
    (tmp_path / 'junk.pt').write_bytes(pickle.dumps({'model': 1}))
    code, text = cli('evaluate', tmp_path / 'junk.pt', '--device', 'cpu')
    assert code == 1 and 'not a readable checkpoint' in text and 'weights_only' not in text, text
    torch.save({'model': {}, 'config': {}}, tmp_path / 'partial.pt')
    code, text = cli('evaluate', tmp_path / 'partial.pt', '--device', 'cpu')
    assert code == 1 and 'not a complete vae-tutorial checkpoint' in text and 'history' in text, text
    if not torch.cuda.is_available():
        for argv in (train_args(data, tmp_path / 'cuda-run') + ['--device', 'cuda'], ['sample', ck, '--device', 'cuda']):
            code, text = cli(*argv)
            assert code == 1 and 'CUDA' in text and no_traceback(text) and not (tmp_path / 'cuda-run').exists(), (argv, text)
    state = torch.load(ck, weights_only=True)
    state['model'] = {k: torch.full_like(v, float('nan')) if v.is_floating_point() else v for k, v in state['model'].items()}
    torch.save(state, tmp_path / 'nan.pt')
    code, text = cli('evaluate', tmp_path / 'nan.pt', '--device', 'cpu', '--data-dir', data.parent)
    assert code == 1 and 'not finite' in text and not (tmp_path / 'evaluation.json').exists(), text


@pytest.mark.parametrize('case', ['mixed', 'flat', 'corrupt', 'bomb'])
def test_bad_image_folders(tmp_path, case):
    d = image_folder(tmp_path / 'data')
    first = sorted((d / 'train' / 'dark').glob('*.png'))[0]
    if case == 'mixed': Image.new('L', (5, 9)).save(first)
    if case == 'flat':
        for p in (d / 'train').rglob('*.png'): p.rename(d / 'train' / f'{p.parent.name}-{p.name}')
        for c in ('dark', 'light'): (d / 'train' / c).rmdir()
    if case == 'corrupt': first.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 30)
    if case == 'bomb': png_bomb(first)
    want = {'mixed': 'must all be one size', 'flat': 'no class sub-folders', 'corrupt': 'cannot be decoded',
            'bomb': 'DecompressionBomb'}[case]
    code, text = cli(*train_args(d, tmp_path / 'run'))
    assert code == 1 and want in text and no_traceback(text), text


def test_bad_out_and_json_is_standard(data, tmp_path):
    (tmp_path / 'afile').write_text('x')
    code, text = cli(*train_args(data, tmp_path / 'afile'))
    assert code == 1 and 'is a file, not a folder' in text, text
    from vae_tutorial.runs import write_json
    write_json(tmp_path / 'nan.json', {'a': float('nan'), 'b': [1.0, float('inf')]})
    assert json.loads((tmp_path / 'nan.json').read_text()) == {'a': None, 'b': [1.0, None]}


# ------------------------------------------------------------------------------ interruptions

def run_cli(args, **kw):
    kw = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) | kw
    return subprocess.Popen([sys.executable, '-m', 'vae_tutorial.cli', *map(str, args)], **kw)


def test_ctrl_c_keeps_the_last_checkpoint(data, tmp_path):
    out = tmp_path / 'run'
    # a shell that starts a job in the background makes it ignore SIGINT; give the child the default, as a terminal does
    p = run_cli(train_args(data, out, epochs=500), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (out / 'metrics.json').exists():
        assert p.poll() is None and time.time() < deadline; time.sleep(0.1)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    text = p.communicate(timeout=60)[0]
    assert p.returncode == 130 and 'interrupted' in text and no_traceback(text), text
    state = load_checkpoint(out / 'checkpoint.pt')
    assert 1 <= len(state['history']) < 500


def test_kills_at_random_moments_lose_nothing(data, tmp_path):
    "SIGKILL a run again and again, resume it each time; the result equals an uninterrupted run, seconds aside."
    epochs = 30
    whole, quiet = tmp_path / 'whole', dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    assert run_cli(train_args(data, whole, epochs=epochs), **quiet).wait(timeout=600) == 0
    full = time.monotonic() - start           # an uninterrupted run on this machine, start-up and figures included
    out, rng = tmp_path / 'killed', random.Random(0)
    kills = 0
    for attempt in range(25):                                        # up to 20 kills, then let it finish
        resume = ['--resume'] if (out / 'checkpoint.pt').exists() else []
        p = run_cli(train_args(data, out, *resume, epochs=epochs), **quiet)
        # kill times relative to the whole run, so that they land in every phase (start-up, training, checkpoint and
        # figure writes) however fast this machine is
        try: p.wait(timeout=rng.uniform(0.1, 0.8) * full if attempt < 20 else 600)
        except subprocess.TimeoutExpired: p.kill(); p.wait(); kills += 1
        if (out / 'checkpoint.pt').exists(): load_checkpoint(out / 'checkpoint.pt')   # always whole
        if p.returncode == 0: break
    else: pytest.fail('the run never finished')
    print(f'{kills} kills in {attempt + 1} starts; an uninterrupted run takes {full:.1f} s here')
    assert kills >= 3, f'only {kills} kills: the test did not test much'
    strip = lambda m: [{k: v for k, v in r.items() if not k.endswith('seconds')} for r in m['epochs']]
    read = lambda d: json.loads((d / 'metrics.json').read_text())
    assert strip(read(out)) == strip(read(whole))
    assert not list(out.glob('*.tmp')) and not list(out.glob('.*.tmp'))
