"""MNIST quality benchmark: test negative log-likelihood of one-stochastic-layer VAEs and IWAEs, with standard errors.

Dynamically binarized MNIST, an MLP encoder/decoder 784-H-H-(2x50) / 50-H-H-784 (H = --hidden, Burda et al.'s 200), trained
with the package's loop (`vae_tutorial.train.fit`) on the ELBO ("vae"), the importance-weighted bound ("iwae5",
"iwae50", any "iwaeK") or the same bound with the doubly reparameterized encoder gradient ("iwae50-dreg", any
"iwaeK-dreg"), then evaluated with `vae_tutorial.evaluate.evaluate_model` on the test split (all 10,000 images unless
--eval-n): test ELBO and the importance-weighted NLL estimate with --eval-k samples (5000 as in Burda et al. 2015), each
with its standard error across the test images. Prints a table and writes everything (with the per-epoch trend: test
negative ELBO and a cheap L_k estimate) to --out as JSON.

Two protocols:
* a **wall-clock budget** (--budget-minutes M): each configuration trains for M minutes of wall time (the last epoch
  that would overrun is not started) while the learning rate decays smoothly by 10x over the budget (--lr-schedule
  exp-time: lr·10^(-t/M), the end point of Burda's schedule reached continuously; --lr-schedule burda-time compresses
  Burda's stages instead, stage i of 8 lasting 3^i/3280 of the budget at lr·10^(-i/7), which leaves two thirds of a
  short budget at the smallest rate); stopped runs continue with --resume;
* **Burda's epochs** (--epochs 3280 --lr-schedule burda): stage i lasts 3^i epochs, as in the paper; a GPU job.

Reference points (test NLL in nats, one stochastic layer, dynamically binarized MNIST, k = 5000):
Burda, Grosse & Salakhutdinov (2015, Table 1): VAE 86.76, IWAE k=5 85.54, IWAE k=50 84.78.
nbip/IWAE, an open TensorFlow 2 reproduction: VAE 86.35, IWAE k=50 84.59.
Tucker et al. (2018), DReG: IWAE k=50 with DReG 84.32.

Examples:
    python benchmarks/mnist_quality.py --configs vae,iwae5,iwae50,iwae50-dreg --budget-minutes 60 --device cpu \\
        --resume --out nbs/results/benchmark_mnist.json                             # the CPU protocol (4+ hours)
    python benchmarks/mnist_quality.py --configs vae,iwae5,iwae50,iwae50-dreg --protocol burda --device cuda \\
        --out nbs/results/benchmark_mnist_gpu.json                                  # the full protocol on a GPU
    python benchmarks/mnist_quality.py --merge a.json b.json --out nbs/results/benchmark_mnist.json   # combine runs
"""
import argparse, datetime, json, math, platform, re, sys, time
from dataclasses import asdict
from pathlib import Path

import torch

from vae_tutorial import __version__
from vae_tutorial.benchmark import benchmark_markdown
from vae_tutorial.config import CheckpointError, TrainConfig, build_model, load_checkpoint, make_loss, save_checkpoint
from vae_tutorial.data import DATASET_INFO, DataNotFoundError, ImageBatches, get_loaders
from vae_tutorial.evaluate import estimate_log_px, evaluate_model
from vae_tutorial.runs import restore_rng, rng_states, write_json
from vae_tutorial.train import fit, make_optimizer, pick_device, seed_everything

N_CLASSES = len(DATASET_INFO['mnist'].classes)
ANCHORS = {'Burda et al. 2015': {'vae': 86.76, 'iwae5': 85.54, 'iwae50': 84.78},
           'nbip/IWAE (TensorFlow 2)': {'vae': 86.35, 'iwae50': 84.59},
           'Tucker et al. 2018 (DReG)': {'iwae50-dreg': 84.32}}
TARGETS = {'cpu': {'vae': 87.5, 'best iwae': 85.5},                    # this project's targets, nats, 60 CPU-minutes each
           'gpu': {'vae': 86.5, 'iwae50': 84.6, 'iwae50-dreg': 84.4}}   # ... and for the full protocol on a GPU
PROTOCOLS = {'burda': dict(epochs=3280, lr_schedule='burda', batch_size=100)}   # --protocol NAME sets these defaults


def config_for(name, args):
    "The TrainConfig of a benchmark configuration name: 'vae', 'iwaeK' or 'iwaeK-dreg'."
    m = re.fullmatch(r'iwae(\d+)(-dreg)?', name)
    if name != 'vae' and not m:
        raise SystemExit(f"error: unknown configuration {name!r}: use vae, iwaeK or iwaeK-dreg (e.g. iwae5, iwae50-dreg)")
    objective = dict(objective='iwae', iw_k=int(m.group(1)), grad='dreg' if m.group(2) else 'iwae') if m else {}
    return TrainConfig(dataset='mnist', targets='dynamic', latent_dim=args.latent_dim, hidden=tuple(args.hidden),
                       optimizer='adam', lr=args.lr, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
                       warmup_epochs=args.warmup_epochs, **objective)


def burda_lr(epoch, epochs, lr):
    "Burda et al.'s schedule, compressed to `epochs`: stage i (i = 0..7) lasts ∝ 3^i epochs at lr · 10^(-i/7)."
    return lr * 10 ** (-burda_stage((epoch - 1) / epochs) / 7)


def burda_stage(fraction):
    "The stage (0..7) of Burda et al.'s schedule that a point `fraction` of the way through it falls in."
    ends = [sum(3 ** j for j in range(i + 1)) / 3280 for i in range(8)]
    return next((i for i, e in enumerate(ends) if fraction < e - 1e-12), len(ends) - 1)


def subset(test, n, batch_size=100):
    "The first n test images (all if n is 0) as a fixed, repeatable loader with the same binarization seed."
    n = len(test.images) if not n else min(n, len(test.images))
    return ImageBatches(test.images[:n], test.labels[:n], batch_size, test.targets, shuffle=False,
                        device=test.device, seed=test.seed, repeat=True)


def device_name(dev):
    if dev.type == 'cuda': return torch.cuda.get_device_name(dev)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s))"


def start_or_resume(name, config, args, dev, train):
    "Model, optimizer and history: fresh, or from runs/NAME/checkpoint.pt with --resume (refusing to overwrite otherwise)."
    ckpt = Path(args.runs) / name / 'checkpoint.pt'
    seed_everything(config.seed); train.reset()
    model = build_model(config, train.image_shape, N_CLASSES).to(dev)
    opt = make_optimizer(config.optimizer, model.parameters(), config.lr)
    if not ckpt.exists():
        if args.resume: print(f"[{name}] nothing to resume in {ckpt.parent}: starting afresh", flush=True)
        return model, opt, []
    if not (args.resume or args.restart):
        raise SystemExit(f"error: {ckpt} exists: pass --resume to continue that run, --restart to train it again from "
                         "scratch, or another --runs folder; nothing was changed")
    if args.restart: return model, opt, []
    try: state = load_checkpoint(ckpt, expect=config, map_location=dev)
    except CheckpointError as e: raise SystemExit(f"error: cannot resume {name}: {e}") from None
    model.load_state_dict(state['model']); opt.load_state_dict(state['optimizer'])
    restore_rng(state, train)
    print(f"[{name}] resuming after epoch {len(state['history'])} "
          f"({state['history'][-1]['wall_seconds'] / 60:.1f} min trained)", flush=True)
    return model, opt, state['history']


def run_config(name, args, dev, train, test):
    "Train one configuration (or continue it), evaluate it, return its result record."
    config = config_for(name, args)
    model, opt, history = start_or_resume(name, config, args, dev, train)
    trend_test = subset(test, args.trend_n)
    g = torch.Generator(dev).manual_seed(1)
    run_dir, budget = Path(args.runs) / name, (args.budget_minutes or 0) * 60
    done = history[-1]['wall_seconds'] if history else 0.0
    start = time.perf_counter() - done                  # wall time counts on from where a resumed run stopped

    def lr_for(epoch, elapsed):
        if args.lr_schedule == 'burda': return burda_lr(epoch, config.epochs, config.lr)
        if args.lr_schedule == 'burda-time': return config.lr * 10 ** (-burda_stage(elapsed / budget) / 7)
        if args.lr_schedule == 'exp-time': return config.lr * 10 ** (-min(elapsed / budget, 1.0))
        return config.lr

    def set_lr(epoch, elapsed):
        for group in opt.param_groups: group['lr'] = lr_for(epoch, elapsed)

    class Stop(Exception): pass

    def on_epoch_end(history):
        r = history[-1]
        r['lr'] = opt.param_groups[0]['lr']
        if args.trend_k:
            with torch.no_grad():
                model.eval()
                lp = torch.cat([estimate_log_px(model, x, None, args.trend_k, args.chunk, g).double() for x, _ in trend_test])
                r[f'test_nll_k{args.trend_k}'] = -lp.mean().item()
                r[f'test_nll_k{args.trend_k}_se'] = (lp.std() / len(lp) ** 0.5).item()   # across the trend's test images
        r['wall_seconds'] = time.perf_counter() - start
        trend = (f" | NLL (k={args.trend_k}, first {len(trend_test.images)} test images) {r[f'test_nll_k{args.trend_k}']:.2f} ± "
                 f"{r[f'test_nll_k{args.trend_k}_se']:.2f}") if args.trend_k else ''
        print(f"[{name}] epoch {r['epoch']}: lr {r['lr']:.2e} | test −ELBO {r['test_loss']:.2f}{trend} nats | "
              f"{r['wall_seconds'] / 60:.1f} min", flush=True)
        save_checkpoint(run_dir / 'checkpoint.pt', model, opt, config, train.image_shape, N_CLASSES, history, rng_states(train))
        epoch_seconds = r['wall_seconds'] - (history[-2]['wall_seconds'] if len(history) > 1 else done)
        if budget and r['wall_seconds'] + epoch_seconds > budget: raise Stop      # the next epoch would overrun the budget
        set_lr(r['epoch'] + 1, r['wall_seconds'])

    if budget and done >= budget: print(f"[{name}] its {args.budget_minutes} minutes are used up: evaluating", flush=True)
    elif len(history) < config.epochs:
        set_lr(len(history) + 1, done)
        try: fit(model, opt, train, test, config.epochs, config.beta, history, on_epoch_end, progress=False, log=False,
                 loss_fn=make_loss(config), warmup_epochs=config.warmup_epochs)
        except Stop: print(f"[{name}] stopped after epoch {len(history)}: the next epoch would pass the "
                           f"{args.budget_minutes}-minute budget", flush=True)
    train_seconds = history[-1]['wall_seconds'] if history else 0.0
    t0 = time.perf_counter()
    report = evaluate_model(model, subset(test, args.eval_n), k=args.eval_k, chunk=args.chunk, progress=not args.no_progress)
    print(f"[{name}] test NLL (k={args.eval_k}, {report['n_examples']} test images) {report['test_nll']:.2f} ± "
          f"{report['test_nll_se']:.2f} nats", flush=True)
    anchors = {src: v[name] for src, v in ANCHORS.items() if name in v}
    return dict(config=name, objective=config.objective, iw_k=config.iw_k, grad=config.grad, epochs=len(history),
                train_seconds=train_seconds, eval_seconds=time.perf_counter() - t0, eval_examples=report['n_examples'],
                anchors=anchors, train_config=asdict(config), lr_schedule=args.lr_schedule,
                budget_minutes=args.budget_minutes, **report, history=history)


def write(record, out):
    "Write the results JSON atomically (never half a file), making its folder if needed."
    out = Path(out); out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, record)


def merge(files):
    "One record from the results of several runs; they must share eval_k and name different configurations."
    parts = [json.loads(Path(f).read_text()) for f in files]
    ks = {part['eval_k'] for part in parts}
    if len(ks) > 1: raise SystemExit(f"error: cannot merge results evaluated with different --eval-k ({sorted(ks)})")
    names = [r['config'] for part in parts for r in part['results']]
    if len(set(names)) < len(names): raise SystemExit(f"error: cannot merge: a configuration appears twice ({names})")
    return {**parts[0], 'results': [r for part in parts for r in part['results']],
            'device': ' + '.join(sorted({part['device'] for part in parts})), 'merged_from': list(map(str, files))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--configs', default='vae,iwae5,iwae50,iwae50-dreg', help='comma-separated: vae, iwaeK, iwaeK-dreg (default vae,iwae5,iwae50,iwae50-dreg)')
    p.add_argument('--protocol', choices=sorted(PROTOCOLS), help="a named protocol's defaults (burda: 3280 epochs, Burda's schedule)")
    p.add_argument('--epochs', type=int, help='epochs per configuration (default 1000; 3280 with --protocol burda)')
    p.add_argument('--budget-minutes', type=float, help='train each configuration for this many wall-clock minutes at most')
    p.add_argument('--hidden', type=int, nargs='+', default=[200, 200], help='hidden widths (default 200 200, as Burda et al.)')
    p.add_argument('--latent-dim', type=int, default=50, help='size of z (default 50)')
    p.add_argument('--batch-size', type=int, default=100, help='batch size (default 100)')
    p.add_argument('--lr', type=float, default=1e-3, help='(initial) learning rate of Adam (default 1e-3)')
    p.add_argument('--lr-schedule', choices=('constant', 'burda', 'burda-time', 'exp-time'),
                   help="constant (default without a budget); burda: Burda et al.'s 8 stages of 3^i epochs at lr·10^(-i/7), "
                        "compressed to --epochs; burda-time: the same stages over the budget; exp-time (default with --budget-minutes): "
                        "lr·10^(-t/T), a smooth decay by 10× over the budget T")
    p.add_argument('--warmup-epochs', type=int, default=0, help='KL warm-up epochs (default 0: none)')
    p.add_argument('--eval-k', type=int, default=5000, help='importance samples for the test NLL (default 5000)')
    p.add_argument('--eval-n', type=int, default=0, help='evaluate on the first N test images only (default 0: all 10,000)')
    p.add_argument('--trend-k', type=int, default=100, help='samples for the per-epoch NLL trend (0: none; default 100)')
    p.add_argument('--trend-n', type=int, default=500, help='test images for the per-epoch NLL trend (default 500)')
    p.add_argument('--chunk', type=int, default=500, help='samples decoded at once in the NLL estimate (default 500)')
    p.add_argument('--seed', type=int, default=0, help='seed (default 0)')
    p.add_argument('--device', default='auto', help='auto, cpu, cuda (default auto)')
    p.add_argument('--threads', type=int, help='torch CPU threads (default: all cores)')
    p.add_argument('--data-dir', help='data folder (default $VAE_TUTORIAL_DATA, else ~/.cache/vae-tutorial)')
    p.add_argument('--runs', default='runs/benchmark', help='folder for the checkpoints (default runs/benchmark)')
    p.add_argument('--resume', action='store_true', help='continue the runs already in --runs (each up to its budget or --epochs)')
    p.add_argument('--restart', action='store_true', help='train again from scratch over runs already in --runs')
    p.add_argument('--out', default='mnist_benchmark.json', help='results JSON (default mnist_benchmark.json)')
    p.add_argument('--merge', nargs='+', metavar='JSON', help='only combine the results of earlier runs into --out and print their table')
    p.add_argument('--no-progress', action='store_true', help='no progress bar during evaluation')
    args = p.parse_args(argv)
    if args.merge:
        record = merge(args.merge)
        write(record, args.out); print(benchmark_markdown(record)); return record
    for key, value in (PROTOCOLS.get(args.protocol) or {}).items():
        if getattr(args, key) in (None, p.get_default(key)): setattr(args, key, value)
    args.epochs = args.epochs or (1_000_000 if args.budget_minutes else 1000)
    args.lr_schedule = args.lr_schedule or ('exp-time' if args.budget_minutes else 'constant')
    if args.lr_schedule.endswith('-time') and not args.budget_minutes: p.error(f'--lr-schedule {args.lr_schedule} needs --budget-minutes')
    if args.resume and args.restart: p.error('--resume and --restart exclude each other')
    names = [n.strip() for n in args.configs.split(',')]
    for name in names: config_for(name, args)   # a bad name stops here, before any data is read or model trained
    if args.threads: torch.set_num_threads(args.threads)
    try:
        dev = pick_device(args.device)
        train, test = get_loaders('mnist', args.data_dir, 'dynamic', args.batch_size, dev, args.seed, download=False,
                                  test_batch_size=100)
    except (RuntimeError, DataNotFoundError) as e: raise SystemExit(f"error: {e}") from None
    record = dict(benchmark='MNIST, dynamically binarized, one stochastic layer',
                  date=datetime.date.today().isoformat(), device=device_name(dev), torch=torch.__version__,
                  python=platform.python_version(), vae_tutorial=__version__, argv=sys.argv[1:] if argv is None else argv,
                  eval_k=args.eval_k, anchors=ANCHORS, targets=TARGETS, protocol=args.protocol,
                  budget_minutes=args.budget_minutes, results=[])
    for name in names:
        record['results'].append(run_config(name, args, dev, train, test))
        write(record, args.out)
    print(benchmark_markdown(record))
    return record


if __name__ == '__main__': main()
