"""The speed benchmark script (benchmarks/speed.py) end to end, at a tiny size: a few batches of one configuration,
one start-up measurement each, no end-to-end run. It checks that the script runs, writes its JSON with every field the
table and the README read, and prints the table — never how fast anything was (speed is not asserted in tests)."""
import importlib.util
import json
from pathlib import Path

import pytest

from conftest import run_script, HAS_MNIST, NO_MNIST

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'benchmarks' / 'speed.py'


def run(*args, cwd):
    "Run the benchmark script; return (exit code, stdout + stderr)."
    return run_script(SCRIPT, *args, cwd=cwd)


@pytest.mark.skipif(not HAS_MNIST, reason=NO_MNIST)
def test_tiny_speed_benchmark(tmp_path):
    out = tmp_path / 'speed.json'
    code, text = run('--configs', 'bench-k1', '--repeats', 2, '--startup-repeats', 1, '--no-end-to-end', '--max-batches', 5,
                     '--processes', '1,2', '--scaling-epochs', 1, '--out', out, cwd=tmp_path)
    assert code == 0, text
    record = json.loads(out.read_text())
    (c,) = record['configs']
    assert c['name'] == 'bench-k1' and c['examples_per_timed_epoch'] == 500 and c['repeats'] == 2
    for side in ('reference', 'engine'):
        s = c[side]
        assert len(s['epoch_seconds']['all']) == 2 and s['epoch_seconds']['min'] <= s['epoch_seconds']['median']
        assert s['gflops'] > 0 and s['peak_fraction'] > 0 and len(s['startup_seconds']['all']) == 1
        assert 100 < s['test_loss'] < 544, s['test_loss']       # nats per example: learning, not yet good
    assert c['flops_per_epoch'] > 0 and record['peak']['gflops'] >= record['peak']['before']['gflops'] > 0
    assert record['max_batches'] == 5 and record['help_seconds']['median'] > 0
    assert '| bench-k1 |' in text and 'matmul peak' in text and '`vae-tutorial --help`' in text
    rows = record['processes']['rows']                      # the same run on 1 and 2 processes (torchrun)
    assert [r['processes'] for r in rows] == [1, 2] and all(r['epoch_seconds']['median'] > 0 for r in rows)
    assert all(100 < r['test_loss'] < 544 for r in rows), rows


def test_flops_count_matches_the_layers():
    "The benchmark's FLOP count for bench-k1 is the layer-by-layer count of notebook 06c: 2mkn per product."
    spec = importlib.util.spec_from_file_location('speed', SCRIPT)
    speed = importlib.util.module_from_spec(spec); spec.loader.exec_module(speed)
    import torch
    from vae_tutorial.perf import training_flops
    from vae_tutorial.config import build_model, make_loss
    config = speed.train_config('bench-k1')
    model = build_model(config, (1, 28, 28), 10)
    layers = [(784, 200, False), (200, 200, True), (200, 100, True), (50, 200, True), (200, 200, True), (200, 784, True)]
    per_example = sum(2 * k * n * (3 if grad_in else 2) for k, n, grad_in in layers)
    assert training_flops(model, make_loss(config), torch.rand(100, 1, 28, 28)) == 100 * per_example


def test_unknown_configuration_rejected(tmp_path):
    code, text = run('--configs', 'mlp400,huge', '--out', tmp_path / 'x.json', cwd=tmp_path)
    assert code != 0 and "unknown configuration 'huge'" in text, text
    assert not (tmp_path / 'x.json').exists()
