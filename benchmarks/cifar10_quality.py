"""CIFAR-10 quality benchmark: the closed-form Gaussian baselines and the whitened VAE, in bits per dimension on the test split.

1. Baselines (notebook 08c, `gaussian_baselines`): a diagonal Gaussian, PPCA with L = 64, 256 and 1024 components and the
   full-covariance Gaussian, fitted in closed form to the uniformly dequantized training images and scored on every test
   image with the exact expectation over the dequantization noise: an upper bound on -log P(v) of the 8-bit images.
2. The whitened VAE (notebook 08c, `--arch whitened`): trained with the package's `run_training` (the function behind
   `vae-tutorial train`) from the Gaussian fit, then evaluated with `evaluate_model`: the importance-weighted bound
   -L_k on the test images (one uniform dequantization draw per image), with its standard error across the images.

Writes both to --out as JSON (baselines, run metrics and configuration, test report, timings, machine).

Examples:
    python benchmarks/cifar10_quality.py --device cpu --out nbs/results/cifar10_whitened.json     # the CPU protocol
    python benchmarks/cifar10_quality.py --dataset cifar10 --device cuda --epochs 200 --out nbs/results/cifar10_whitened_gpu.json
"""
import argparse, datetime, platform, re, sys, time
from pathlib import Path

import torch

from vae_tutorial import __version__
from vae_tutorial.config import TrainConfig, load_checkpoint, model_from_checkpoint
from vae_tutorial.data import ImageBatches, load_dataset
from vae_tutorial.evaluate import evaluate_model
from vae_tutorial.runs import train_and_keep, write_json
from vae_tutorial.whitened import gaussian_baselines


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dataset', default='cifar10-jpeg', help='cifar10 (official files) or cifar10-jpeg (the JPEG copy)')
    p.add_argument('--data-dir', default=None, help='data folder (default: $VAE_TUTORIAL_DATA, else the cache folder)')
    p.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'auto'")
    p.add_argument('--epochs', type=int, default=35, help='training epochs (35: about 53 minutes on 2 CPU cores)')
    p.add_argument('--latent-dim', type=int, default=64, help='size of z')
    p.add_argument('--hidden', type=int, nargs='+', default=[1024, 1024], help='hidden widths of the encoder MLP (mirrored)')
    p.add_argument('--lr', type=float, default=3e-4, help='Adam learning rate')
    p.add_argument('--batch-size', type=int, default=100, help='examples per batch')
    p.add_argument('--warmup-epochs', type=int, default=2, help='KL warm-up epochs')
    p.add_argument('--seed', type=int, default=0, help='seed of the run and of the evaluation noise')
    p.add_argument('--k', type=int, default=100, help='importance samples per test image for -L_k')
    p.add_argument('--n-eval', type=int, default=10_000, help='test images for -L_k (the first n; 10000: all)')
    p.add_argument('--runs', default='runs', help='folder for the run folder (not kept)')
    p.add_argument('--out', required=True, help='JSON file to write')
    p.add_argument('--no-progress', action='store_true', help='no progress bars (for logs)')
    return p.parse_args(argv)


def main(argv=None):
    a = parse(argv)
    for name, v in (('epochs', a.epochs), ('k', a.k), ('n-eval', a.n_eval)):
        if v < 1: sys.exit(f"--{name} must be at least 1, got {v}")
    start = time.time()
    train, _ = load_dataset(a.dataset, 'train', a.data_dir, download=False, progress=not a.no_progress)
    test, test_labels = load_dataset(a.dataset, 'test', a.data_dir, download=False, progress=not a.no_progress)
    base = gaussian_baselines(train, test)
    base_seconds = time.time() - start
    for name, r in base.items():
        print(f"{a.dataset}, test split: {name:26s} {r['bits_per_dim']:.4f} ± {r['bits_per_dim_se']:.4f} bits/dim "
              f"({r['nats']:.1f} nats per image)", flush=True)
    config = TrainConfig(dataset=a.dataset, arch='whitened', likelihood='whitened-gaussian', latent_dim=a.latent_dim,
                         hidden=tuple(a.hidden), lr=a.lr, batch_size=a.batch_size, epochs=a.epochs,
                         warmup_epochs=a.warmup_epochs, seed=a.seed)
    device = torch.device('cuda' if a.device == 'auto' and torch.cuda.is_available() else 'cpu' if a.device == 'auto' else a.device)

    def report(run:Path) -> dict:
        model = model_from_checkpoint(load_checkpoint(run / 'checkpoint.pt', expect=config)).to(device)
        n = min(a.n_eval, len(test))
        batches = ImageBatches(test[:n], test_labels[:n], 100, 'dequantized', shuffle=False, device=device, seed=a.seed,
                               repeat=True)
        t = time.time()
        rep = evaluate_model(model, batches, k=a.k, chunk=a.k, progress=not a.no_progress, seed=a.seed)
        rep['eval_seconds'] = time.time() - t
        return rep

    run = Path(a.runs) / (re.sub(r'[^A-Za-z0-9._-]+', '_', a.dataset).strip('_') + '-whitened')   # e.g. cifar10-jpeg-whitened
    kept = train_and_keep(config, run, a.out, report, data_dir=a.data_dir, device=str(device), download=False,
                          progress=not a.no_progress)
    rep = kept['test_report']
    full = base['full-covariance Gaussian']
    print(f"{a.dataset}, test split ({rep['n_examples']:,} images): whitened VAE -L_{rep['k']} = {rep['bits_per_dim']:.4f} "
          f"± {rep['bits_per_dim_se']:.4f} bits/dim after {a.epochs} epochs ({kept['train_seconds'] / 60:.1f} min of "
          f"training); full-covariance Gaussian {full['bits_per_dim']:.4f} bits/dim", flush=True)
    kept.update(baselines=base, baseline_seconds=base_seconds,
                machine=dict(platform=platform.platform(), torch=torch.__version__, threads=torch.get_num_threads(),
                             device=str(device), vae_tutorial=__version__),
                written=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                unit='bits per dimension on the test split (bits_per_dim; nats per image where named)')
    write_json(a.out, kept)
    print(f"wrote {a.out}")


if __name__ == '__main__':
    try: main()
    except (ValueError, FileNotFoundError) as e:   # bad options or data: say what is wrong, without a traceback
        sys.exit(f"cifar10_quality.py: {e}")
