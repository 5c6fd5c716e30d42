"""Training speed: the package's engine against a conventional PyTorch training loop, side by side on one machine.

For each configuration, the same model is trained twice in one process, one epoch at a time, alternating:

* the **reference**: the way most tutorials train (pytorch/examples' VAE, for instance) — a `torch.utils.data.DataLoader`
  over a torchvision dataset with `ToTensor`, the loss written with plain autograd (`binary_cross_entropy_with_logits`,
  the closed-form KL; for the discretized Gaussian, the bins' mass with `log_ndtr` and autograd), `torch.optim` with
  its default implementation, and `loss.item()` after every step;
* the **engine**: what `vae-tutorial train` runs — data decoded once into one uint8 tensor on the device, the
  hand-fused likelihoods, the fused/foreach optimizer, no host synchronisation per step, and `torch.compile` where
  `--compile auto` chooses it (CUDA).

Both start from the same initial weights (`build_model` with the run's seed). Reported per configuration: seconds per
training epoch (median and spread over the repeats), examples per second, achieved GFLOP/s (matrix-product FLOPs of
the forward and backward pass, counted from the layer shapes by `torch.utils.flop_counter`), the ratio to the
machine's fp32 matmul peak measured in the same run, start-up time (process start to the line `training ...` that
each printed right before its first step), and the test loss both reached (negative ELBO, nats per example, test
split, after the same number of epochs). Then a full `vae-tutorial train` of the 784-400-20 configuration, 10 epochs
end to end, against the reference loop's 10 epochs (each with its test pass per epoch), and the time of
`vae-tutorial --help`, and the same training run on 1 and 2 processes under `torchrun` (--processes; notebook 05b),
the machine's cores shared out between them. Speed is never asserted anywhere: this script prints a table and writes JSON.

    python benchmarks/speed.py                                   # CPU, every configuration, ~40 minutes on 2 cores
    python benchmarks/speed.py --device cuda --out nbs/results/speed_cuda.json   # the same on a GPU (a few minutes)
    python benchmarks/speed.py --device cuda --engine-only --out nbs/results/speed_cuda.json   # the engine alone (~1 minute)
    python benchmarks/speed.py --configs mlp400 --repeats 2 --no-end-to-end      # a quick look
"""
import argparse, datetime, itertools, json, math, os, platform, shutil, statistics, subprocess, sys, tempfile, time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {   # name: (description, TrainConfig fields)
    'mlp400':   ('784-400-20 MLP, grayscale MNIST, Adam 1e-3, batch 128 (pytorch/examples)',
                 dict(dataset='mnist', targets='intensity', hidden=(400,), latent_dim=20, batch_size=128, optimizer='adam')),
    'seed2019': ('the seed2019 preset: 784-256-10 MLP, grayscale MNIST, RMSprop, batch 100',
                 dict(dataset='mnist', targets='intensity', latent_dim=10, hidden=(256,), init='keras', optimizer='rmsprop',
                      batch_size=100)),
    'bench-k1': ('784-200-200-50 MLP, dynamic MNIST, ELBO, Adam, batch 100',
                 dict(dataset='mnist', targets='dynamic', hidden=(200, 200), latent_dim=50, batch_size=100, optimizer='adam')),
    'iwae5':    ('784-200-200-50 MLP, dynamic MNIST, IWAE k = 5, Adam, batch 100',
                 dict(dataset='mnist', targets='dynamic', hidden=(200, 200), latent_dim=50, batch_size=100, optimizer='adam',
                      objective='iwae', iw_k=5)),
    'iwae50':   ('784-200-200-50 MLP, dynamic MNIST, IWAE k = 50, Adam, batch 100',
                 dict(dataset='mnist', targets='dynamic', hidden=(200, 200), latent_dim=50, batch_size=100, optimizer='adam',
                      objective='iwae', iw_k=50)),
    'conv':     ('conv VAE of notebook 12: CIFAR-10 JPEG copy, channels 32-64-128, latent 64, discretized Gaussian, batch 64',
                 dict(dataset='cifar10-jpeg', targets='intensity', arch='conv', hidden=(32, 64, 128), latent_dim=64,
                      likelihood='discretized-gaussian', lr=2e-3, batch_size=64)),
}
VAE_TUTORIAL = [shutil.which('vae-tutorial')] if shutil.which('vae-tutorial') else [sys.executable, '-m', 'vae_tutorial.cli']
E2E = 'mlp400'    # the end-to-end comparison: a full `vae-tutorial train` against the reference loop
TARGETS = {'end_to_end_speedup': 3.0, 'mlp_peak_fraction': 0.5, 'iwae50_cpu_epoch_seconds': 25.0,
           'conv_cpu_epoch_seconds': 20.0, 'help_seconds': 1.0, 'startup_seconds': 3.0,
           'gpu_bench_k1_epoch_seconds': 0.5, 'gpu_iwae50_epoch_seconds': 1.5, 'gpu_conv_epoch_seconds': 2.0}


def train_config(name, seed=0):
    "The TrainConfig of a configuration name."
    from vae_tutorial.config import TrainConfig
    if name not in CONFIGS: raise SystemExit(f"error: unknown configuration {name!r}; choose from {', '.join(CONFIGS)}")
    return TrainConfig(**CONFIGS[name][1], seed=seed, epochs=1)


def cli_args(config):
    "`vae-tutorial train` options for a configuration."
    c, args = config, ['--dataset', config.dataset, '--targets', config.targets, '--latent-dim', str(config.latent_dim),
                       '--hidden', *map(str, config.hidden), '--batch-size', str(config.batch_size), '--optimizer',
                       config.optimizer, '--lr', str(config.lr), '--init', config.init, '--seed', str(config.seed),
                       '--arch', config.arch, '--likelihood', config.likelihood]
    if c.objective != 'elbo': args += ['--objective', c.objective, '--iw-k', str(c.iw_k)]
    return args


# ------------------------------------------------------------------------------------------------ the reference loop

def reference_loader(config, split, data_dir):
    "A DataLoader over the torchvision dataset with ToTensor, shuffled for training: the conventional input pipeline."
    import torch
    from torchvision import datasets, transforms
    from vae_tutorial.data import data_root
    root = data_root(data_dir)
    if config.dataset == 'mnist':
        ds = datasets.MNIST(str(root), train=split == 'train', download=False, transform=transforms.ToTensor())
    elif config.dataset == 'cifar10-jpeg':
        ds = datasets.ImageFolder(str(root / 'cifar10-jpeg' / split), transform=transforms.ToTensor())
    else: raise SystemExit(f"error: the reference loop knows mnist and cifar10-jpeg, not {config.dataset}")
    return torch.utils.data.DataLoader(ds, batch_size=config.batch_size, shuffle=split == 'train')


def reference_log_discretized(x, mean, log_sigma, levels=256):
    "log P(bin of x) under N(mean, σ²), the bins' mass in log space, differentiated by autograd (edge bins 1000 σ wide)."
    import torch
    from torch.special import log_ndtr
    v = torch.floor(x * levels).clamp(0, levels - 1)
    inv_sigma = torch.exp(-log_sigma)
    lo = (v / levels - mean) * inv_sigma
    hi = lo + inv_sigma / levels
    lo, hi = torch.where(v == 0, hi - 1e3, lo), torch.where(v == levels - 1, lo + 1e3, hi)
    flip = lo + hi > 0
    a, b = torch.where(flip, -hi, lo), torch.where(flip, -lo, hi)
    log_a, log_b = log_ndtr(a), log_ndtr(b)
    d = log_a - log_b
    ok = d < -1e-3
    exact = log_b + torch.log(-torch.expm1(torch.where(ok, d, -1.0)))
    c = 0.5 * (lo + hi)
    return torch.where(ok, exact, -0.5 * math.log(2 * math.pi) - 0.5 * c * c - log_sigma - math.log(levels))


def reference_loss(model, x, config):
    "The negative ELBO or IWAE bound written the plain way: every operation differentiated by autograd."
    import torch, torch.nn.functional as F
    mean, log_var = model.encoder(x)
    std = torch.exp(0.5 * log_var)
    k = config.iw_k if config.objective == 'iwae' else 1
    eps = torch.randn(k, *mean.shape, device=x.device)
    z = mean + eps * std                                                        # (k, B, L)
    out = model.decoder(z)                                                      # (k, B, *params_shape)
    if config.likelihood == 'bernoulli':
        log_px_z = -F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction='none').flatten(2).sum(-1)
    else:                                                                       # discretized Gaussian, per pixel σ
        mu, raw = out.chunk(2, dim=2)
        log_sigma = torch.log(1e-3 + F.softplus(raw))
        log_px_z = reference_log_discretized(x, mu, log_sigma).flatten(2).sum(-1)
    if k == 1:
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(-1)
        return (kl - log_px_z[0]).mean()
    normal = torch.distributions.Normal
    log_w = log_px_z + normal(0, 1).log_prob(z).sum(-1) - normal(mean, std).log_prob(z).sum(-1)
    return -(torch.logsumexp(log_w, 0) - math.log(k)).mean()


def reference_optimizer(config, params):
    "torch.optim with its defaults (the for-loop implementation on a CPU), as a tutorial writes it."
    import torch
    if config.optimizer == 'adam': return torch.optim.Adam(params, lr=config.lr)
    return torch.optim.RMSprop(params, lr=config.lr, alpha=0.9, eps=1e-7)


def reference_epoch(model, loader, optimizer, config, device, max_batches=None):
    "One conventional training epoch (or its first `max_batches` batches); returns (seconds, mean train loss)."
    import torch
    model.train()
    start, total, n = time.perf_counter(), 0.0, 0
    for x, _ in itertools.islice(loader, max_batches):
        x = x.to(device)
        if config.targets == 'dynamic': x = torch.bernoulli(x)
        loss = reference_loss(model, x, config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x); n += len(x)            # a host synchronisation per step, as tutorials do
    return time.perf_counter() - start, total / n


def reference_test(model, loader, config, device):
    "The conventional test pass: mean negative ELBO (one z per image) over the test loader, in nats per example."
    import torch
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for x, _ in loader:
            x = x.to(device)
            if config.targets == 'dynamic': x = torch.bernoulli(x)
            total += reference_loss(model, x, replace(config, objective='elbo', iw_k=1)).item() * len(x); n += len(x)
    return total / n


def reference_run(name, epochs, data_dir, device, seed):
    "The reference loop as a program of its own (for the start-up and end-to-end timings): train and test every epoch."
    import torch
    from vae_tutorial.config import build_model
    from vae_tutorial.train import pick_device, seed_everything
    config = train_config(name, seed)
    dev = pick_device(device)
    seed_everything(config.seed)
    train, test = reference_loader(config, 'train', data_dir), reference_loader(config, 'test', data_dir)
    x0, _ = next(iter(test))
    model = build_model(config, tuple(x0.shape[1:]), 10).to(dev)
    optimizer = reference_optimizer(config, model.parameters())
    print(f"training {name} (reference loop) on {dev} for {epochs} epochs", flush=True)
    for epoch in range(1, epochs + 1):
        seconds, train_loss = reference_epoch(model, train, optimizer, config, dev)
        test_loss = reference_test(model, test, config, dev)
        print(f"epoch {epoch}: train loss {train_loss:.2f} | test loss {test_loss:.2f} nats per example | {seconds:.1f} s", flush=True)
    print(json.dumps({'test_loss': test_loss}), flush=True)


# ------------------------------------------------------------------------------------------------ measurements

def spread(xs):
    "Median, min and max of a list of seconds."
    return dict(median=statistics.median(xs), min=min(xs), max=max(xs), all=xs)


def startup_seconds(argv, env):
    "Seconds from process start to its `training ...` line (the process is stopped there)."
    start = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    out = []
    for line in p.stdout:
        out.append(line)
        if line.startswith('training '):
            seconds = time.perf_counter() - start
            p.kill(); p.wait()
            return seconds
    p.wait()
    raise SystemExit(f"error: {' '.join(argv[:4])} ... never started training:\n{''.join(out)[-3000:]}")


def run_to_end(argv, env):
    "Run a training program to its end; return (wall seconds, stdout), failing loudly if it fails."
    start = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    if p.returncode: raise SystemExit(f"error: {' '.join(argv[:4])} ... failed:\n{(p.stdout + p.stderr)[-3000:]}")
    return seconds, p.stdout


def engine_setup(config, data_dir, device, compile):
    "Data, model, optimizer and (possibly compiled) loss, as `vae-tutorial train` builds them."
    from vae_tutorial.data import dataset_info, get_loaders
    from vae_tutorial.config import build_model, make_loss
    from vae_tutorial.train import compile_loss, compile_mode, make_optimizer, seed_everything
    seed_everything(config.seed)
    train, test = get_loaders(config.dataset, data_dir, config.targets, config.batch_size, device, config.seed,
                              download=False, progress=False)
    model = build_model(config, train.image_shape, dataset_info(config.dataset, data_dir).n_classes).to(device)
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr)
    return train, test, model, optimizer, compile_loss(make_loss(config), compile_mode(compile, device))


def compare(name, args, device, peak):
    "Alternate reference and engine epochs of one configuration; return its record."
    import torch
    from vae_tutorial.perf import training_flops
    from vae_tutorial.config import build_model, make_loss
    from vae_tutorial.train import eval_epoch, seed_everything, train_epoch
    config = train_config(name, args.seed)
    print(f"\n[{name}] {CONFIGS[name][0]}", flush=True)
    train, test, model, optimizer, loss_fn = engine_setup(config, args.data_dir, device, args.compile)
    seed_everything(config.seed)
    ref_model = build_model(config, train.image_shape, 10).to(device)
    ref_model.load_state_dict(model.state_dict())                        # the same initial weights
    ref_opt = reference_optimizer(config, ref_model.parameters())
    ref_train = reference_loader(config, 'train', args.data_dir)
    x, y = next(iter(train))
    flops = training_flops(model, make_loss(config), x, None) / len(x) * len(train.images)  # per epoch, forward + backward
    ref_s, eng_s, eng_eval = [], [], []
    batches = lambda loader: itertools.islice(loader, args.max_batches)            # whole epochs unless --max-batches
    for r in range(args.repeats):
        if not args.engine_only:
            s, _ = reference_epoch(ref_model, ref_train, ref_opt, config, device, args.max_batches)
            ref_s.append(s)
        start = time.perf_counter(); train_epoch(model, batches(train), optimizer, r + 1, progress=False, loss_fn=loss_fn)
        eng_s.append(time.perf_counter() - start)
        start = time.perf_counter(); eval_epoch(model, batches(test), progress=False)
        eng_eval.append(time.perf_counter() - start)
        ref_note = '' if args.engine_only else f"reference {ref_s[-1]:.2f} s, "
        print(f"[{name}] repeat {r + 1}/{args.repeats}: {ref_note}engine {eng_s[-1]:.2f} s per epoch "
              f"(+ {eng_eval[-1]:.2f} s test pass)", flush=True)
    torch.manual_seed(args.seed)
    test_ref = None if args.engine_only else eval_epoch(ref_model, test, progress=False)['test_loss']  # the same test pass
    torch.manual_seed(args.seed)
    test_eng = eval_epoch(model, test, progress=False)['test_loss']
    n_epoch = len(train.images) if args.max_batches is None else min(len(train.images), args.max_batches * config.batch_size)
    flops *= n_epoch / len(train.images)
    def side(seconds, test_loss):
        med = statistics.median(seconds)
        return dict(epoch_seconds=spread(seconds), examples_per_second=n_epoch / med,
                    gflops=flops / med / 1e9, peak_fraction=flops / med / 1e9 / peak, test_loss=test_loss)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    out = tempfile.mkdtemp(prefix='speed-startup-')
    try:
        eng_start = [startup_seconds([*VAE_TUTORIAL, 'train', *cli_args(config), '--epochs', '1',
                                      '--device', str(device), '--compile', args.compile, '--no-progress',
                                      '--out', str(Path(out) / f'run{i}')] + data_flag(args), env)
                     for i in range(args.startup_repeats)]
        ref_start = [] if args.engine_only else [
            startup_seconds([sys.executable, __file__, '--reference-run', name, '--epochs', '1', '--device', str(device)]
                            + data_flag(args), env) for _ in range(args.startup_repeats)]
    finally: shutil.rmtree(out, ignore_errors=True)
    rec = dict(name=name, description=CONFIGS[name][0], train_config=asdict(config), n_train=len(train.images),
               examples_per_timed_epoch=n_epoch, flops_per_epoch=flops, repeats=args.repeats,
               reference=None if args.engine_only else dict(side(ref_s, test_ref), startup_seconds=spread(ref_start)),
               engine=dict(side(eng_s, test_eng), startup_seconds=spread(eng_start), test_pass_seconds=spread(eng_eval)),
               speedup=None if args.engine_only else statistics.median(ref_s) / statistics.median(eng_s),
               epochs_trained=args.repeats,
               unit='seconds per training epoch; test loss: negative ELBO, nats per example, test split')
    versus = '' if args.engine_only else (f"reference {rec['reference']['epoch_seconds']['median']:.2f} s, engine "
                                          f"{rec['engine']['epoch_seconds']['median']:.2f} s per epoch ({rec['speedup']:.1f}x), ")
    print(f"[{name}] {versus}engine {rec['engine']['gflops']:.1f} GFLOP/s = {100 * rec['engine']['peak_fraction']:.0f} % "
          f"of peak; test loss after {args.repeats} epochs: "
          f"{'' if args.engine_only else f'reference {test_ref:.2f}, '}engine {test_eng:.2f} nats per example", flush=True)
    return rec


def data_flag(args):
    return ['--data-dir', args.data_dir] if args.data_dir else []


def end_to_end(args, device):
    "A full `vae-tutorial train` of E2E for --e2e-epochs against the reference loop's, alternating."
    config = train_config(E2E, args.seed)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    ref_s, eng_s, ref_loss, eng_loss = [], [], [], []
    for r in range(args.e2e_repeats):
        s, text = run_to_end([sys.executable, __file__, '--reference-run', E2E, '--epochs', str(args.e2e_epochs),
                              '--device', str(device)] + data_flag(args), env)
        ref_s.append(s); ref_loss.append(json.loads(text.strip().splitlines()[-1])['test_loss'])
        out = Path(tempfile.mkdtemp(prefix='speed-e2e-'))
        try:
            s, text = run_to_end([*VAE_TUTORIAL, 'train', *cli_args(config), '--epochs', str(args.e2e_epochs),
                                  '--device', str(device), '--compile', args.compile, '--no-progress',
                                  '--out', str(out / 'run')] + data_flag(args), env)
            eng_s.append(s); eng_loss.append(json.loads((out / 'run' / 'metrics.json').read_text())['test_loss'])
        finally: shutil.rmtree(out, ignore_errors=True)
        print(f"[end to end] repeat {r + 1}/{args.e2e_repeats}: reference loop {ref_s[-1]:.1f} s (test loss {ref_loss[-1]:.2f}), "
              f"vae-tutorial train {eng_s[-1]:.1f} s (test loss {eng_loss[-1]:.2f})", flush=True)
    return dict(config=E2E, epochs=args.e2e_epochs, reference_seconds=spread(ref_s), engine_seconds=spread(eng_s),
                speedup=statistics.median(ref_s) / statistics.median(eng_s), reference_test_loss=ref_loss,
                engine_test_loss=eng_loss, unit='wall seconds, process start to exit; test loss in nats per example (test split)')


def process_scaling(args, device):
    "Seconds per training epoch of `vae-tutorial train` (E2E) on N processes under torchrun, for each N of --processes."
    config = train_config(E2E, args.seed)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    rows = []
    for n in args.processes:
        threads = max(1, (os.cpu_count() or 1) // n) if device.type == 'cpu' else 1   # the cores shared out, none idle
        out = Path(tempfile.mkdtemp(prefix='speed-ddp-'))
        try:
            launch = VAE_TUTORIAL if n == 1 else [sys.executable, '-m', 'torch.distributed.run', '--standalone',
                                                  '--nproc-per-node', str(n), '-m', 'vae_tutorial']
            run_to_end([*launch, 'train', *cli_args(config), '--epochs', str(args.scaling_epochs), '--device', str(device),
                        '--compile', args.compile, '--no-progress', '--out', str(out / 'run')] + data_flag(args),
                       dict(env, OMP_NUM_THREADS=str(threads)))
            epochs = json.loads((out / 'run' / 'metrics.json').read_text())['epochs']
        finally: shutil.rmtree(out, ignore_errors=True)
        secs = [r['train_seconds'] for r in epochs[1:]] or [epochs[0]['train_seconds']]   # the first epoch warms up
        n_train = 60_000 if config.dataset == 'mnist' else None
        rows.append(dict(processes=n, threads_per_process=threads, epoch_seconds=spread(secs),
                         examples_per_second=n_train / statistics.median(secs) if n_train else None,
                         test_loss=epochs[-1]['test_loss']))
        print(f"[processes] {n} × {threads} threads: {statistics.median(secs):.2f} s per training epoch "
              f"(test loss {epochs[-1]['test_loss']:.2f} nats per example after {len(epochs)} epochs)", flush=True)
    return dict(config=E2E, epochs=args.scaling_epochs, rows=rows,
                unit='seconds per training epoch (median over the epochs after the first); test loss in nats per example (test split)')


def help_seconds(n=5):
    "Wall seconds of `vae-tutorial --help`, n runs."
    out = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run([*VAE_TUTORIAL, '--help'], capture_output=True, check=True)
        out.append(time.perf_counter() - start)
    return spread(out)


def device_name(dev):
    import torch
    if dev.type == 'cuda': return torch.cuda.get_device_name(dev)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--configs', default=','.join(CONFIGS), help=f"comma-separated, from {', '.join(CONFIGS)} (default: all)")
    p.add_argument('--device', default='cpu', help='cpu (default) or cuda')
    p.add_argument('--compile', default='auto', help="the engine's --compile (default auto: on CUDA only)")
    p.add_argument('--repeats', type=int, default=3, help='epochs of each loop per configuration, alternating (default 3)')
    p.add_argument('--startup-repeats', type=int, default=3, help='start-up measurements of each program (default 3)')
    p.add_argument('--e2e-epochs', type=int, default=10, help='epochs of the end-to-end comparison (default 10)')
    p.add_argument('--e2e-repeats', type=int, default=2, help='runs of each program end to end, alternating (default 2)')
    p.add_argument('--no-end-to-end', action='store_true', help='skip the end-to-end comparison')
    p.add_argument('--processes', default='1,2', type=lambda v: [int(x) for x in v.split(',') if x.strip()],
                   help="process counts for the torchrun comparison, e.g. 1,2 (default); '' skips it")
    p.add_argument('--scaling-epochs', type=int, default=3, help='epochs of each run of the torchrun comparison (default 3)')
    p.add_argument('--engine-only', action='store_true', help='time only the engine: no reference loop, no end-to-end run')
    p.add_argument('--max-batches', type=int, help='time only the first N batches of each epoch (a quick check, not a result)')
    p.add_argument('--seed', type=int, default=0, help='seed of the weights and data order (default 0)')
    p.add_argument('--data-dir', help='data folder (default $VAE_TUTORIAL_DATA, else ~/.cache/vae-tutorial)')
    p.add_argument('--out', default='speed.json', help='results JSON (default speed.json)')
    p.add_argument('--reference-run', metavar='CONFIG', help=argparse.SUPPRESS)   # the reference loop as its own program
    p.add_argument('--epochs', type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reference_run: return reference_run(args.reference_run, args.epochs, args.data_dir, args.device, args.seed)
    names = [n.strip() for n in args.configs.split(',') if n.strip()]
    for n in names: train_config(n)                      # a bad name stops here, before anything runs
    if min(args.repeats, args.startup_repeats, args.e2e_repeats, args.e2e_epochs, args.max_batches or 1, args.scaling_epochs,
           *args.processes) < 1:
        p.error('counts must be at least 1')
    import torch
    from vae_tutorial import __version__
    from vae_tutorial.runs import write_json
    from vae_tutorial.perf import matmul_peak, speed_table
    from vae_tutorial.train import pick_device
    try: device = pick_device(args.device)
    except RuntimeError as e: raise SystemExit(f"error: {e}") from None
    peak_before = matmul_peak(device)
    print(f"fp32 matmul peak: {peak_before['gflops']:.1f} GFLOP/s ({peak_before['threads']} threads)", flush=True)
    record = dict(benchmark='training speed: the package engine against a conventional PyTorch loop',
                  date=datetime.date.today().isoformat(), device=device_name(device), device_type=device.type,
                  torch=torch.__version__, python=platform.python_version(), vae_tutorial=__version__,
                  argv=sys.argv[1:] if argv is None else list(argv), threads=torch.get_num_threads(), compile=args.compile,
                  max_batches=args.max_batches, peak=dict(before=peak_before), targets=TARGETS, configs=[])
    out = Path(args.out)
    for name in names:
        record['configs'].append(compare(name, args, device, peak_before['gflops']))
        write_json_to(out, record, write_json)
    if not (args.no_end_to_end or args.engine_only): record['end_to_end'] = end_to_end(args, device)
    if args.processes and not args.engine_only: record['processes'] = process_scaling(args, device)
    record['help_seconds'] = help_seconds()
    record['peak']['after'] = matmul_peak(device)
    record['peak']['gflops'] = max(record['peak']['before']['gflops'], record['peak']['after']['gflops'])
    for c in record['configs']:                           # ratios against the best peak seen in the run
        for side in ('reference', 'engine'):
            if c[side]: c[side]['peak_fraction'] = c[side]['gflops'] / record['peak']['gflops']
    write_json_to(out, record, write_json)
    print('\n' + speed_table(record))
    for r in record.get('processes', {}).get('rows', []):
        print(f"{record['processes']['config']} on {r['processes']} process(es) × {r['threads_per_process']} threads: "
              f"{r['epoch_seconds']['median']:.2f} s per training epoch")
    print(f"\nwrote {out}")
    return record


def write_json_to(path, record, write_json):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)


if __name__ == '__main__': main()
