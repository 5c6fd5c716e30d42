"""MNIST quality benchmark: test negative log-likelihood of one-stochastic-layer VAEs and IWAEs.

Dynamically binarized MNIST, an MLP encoder/decoder 784-H-H-(2x50) / 50-H-H-784 (H = --hidden), trained with the
package's loop (`vae_tutorial.train.fit`) on the ELBO ("vae") or the importance-weighted bound ("iwae5", "iwae50", any
"iwaeK"), then evaluated with `vae_tutorial.evaluate.evaluate_model`: test ELBO and the importance-weighted NLL
estimate with --eval-k samples (5000 as in Burda et al. 2015). Prints a table and writes everything (with the per-epoch
trend: test negative ELBO and a cheap L_k estimate) to --out as JSON.

Reference points (Burda, Grosse & Salakhutdinov 2015, Table 1, one stochastic layer, NLL in nats):
VAE 86.76, IWAE k=5 85.54, IWAE k=50 84.78.

Examples:
    python benchmarks/mnist_quality.py --configs vae,iwae50 --epochs 1000 --hidden 500 500 --lr-schedule burda --device cuda
    python benchmarks/mnist_quality.py --configs vae --epochs 200 --max-minutes 12 --eval-n 1000 --device cpu --threads 1
    python benchmarks/mnist_quality.py --merge a.json b.json --out nbs/results/benchmark_mnist.json   # combine runs
"""
import argparse, datetime, json, platform, re, sys, time
from dataclasses import asdict
from pathlib import Path

import torch

from vae_tutorial import __version__
from vae_tutorial.cli import write_json
from vae_tutorial.data import DATASET_INFO, DataNotFoundError, ImageBatches, get_loaders
from vae_tutorial.evaluate import estimate_log_px, evaluate_model
from vae_tutorial.train import TrainConfig, build_model, fit, make_loss, make_optimizer, pick_device, save_checkpoint, seed_everything

N_CLASSES = len(DATASET_INFO['mnist'].classes)
ANCHORS = {'vae': 86.76, 'iwae5': 85.54, 'iwae50': 84.78}   # Burda et al. 2015, Table 1 (1 stochastic layer), nats
TARGETS = {'vae': 88.0, 'iwae50': 85.5}                     # this project's targets, nats


def config_for(name, args):
    "The TrainConfig of a benchmark configuration name: 'vae' or 'iwaeK'."
    m = re.fullmatch(r'iwae(\d+)', name)
    if name != 'vae' and not m: raise SystemExit(f"error: unknown configuration {name!r}: use vae or iwaeK (e.g. iwae5, iwae50)")
    objective = dict(objective='iwae', iw_k=int(m.group(1))) if m else {}
    return TrainConfig(dataset='mnist', targets='dynamic', latent_dim=args.latent_dim, hidden=tuple(args.hidden),
                       optimizer='adam', lr=args.lr, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
                       **objective)


def burda_lr(epoch, epochs, lr):
    "Burda et al.'s schedule, compressed to `epochs`: stage i (i = 0..7) lasts ∝ 3^i epochs at lr · 10^(-i/7)."
    ends = [sum(3 ** j for j in range(i + 1)) / 3280 * epochs for i in range(8)]
    stage = next((i for i, e in enumerate(ends) if epoch - 1 < e - 1e-9), len(ends) - 1)  # the stage the epoch starts in
    return lr * 10 ** (-stage / 7)


def subset(test, n):
    "The first n test images as a fixed, repeatable loader with the same binarization seed."
    if not n or n >= len(test.images): return test
    return ImageBatches(test.images[:n], test.labels[:n], test.batch_size, test.targets, shuffle=False,
                        device=test.device, seed=test.seed, repeat=True)


def device_name(dev):
    if dev.type == 'cuda': return torch.cuda.get_device_name(dev)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s))"


def run_config(name, args, dev, train, test):
    "Train one configuration, evaluate it, return its result record."
    config = config_for(name, args)
    seed_everything(config.seed); train.reset()
    model = build_model(config, train.image_shape, N_CLASSES).to(dev)
    opt = make_optimizer(config.optimizer, model.parameters(), config.lr)
    trend_test = subset(test, args.trend_n)
    g = torch.Generator(dev).manual_seed(1)
    start, cpu_start, run_dir = time.perf_counter(), time.process_time(), Path(args.runs) / name
    def set_lr(epoch):
        for group in opt.param_groups:
            group['lr'] = burda_lr(epoch, config.epochs, config.lr) if args.lr_schedule == 'burda' else config.lr
    set_lr(1)

    class Stop(Exception): pass

    def on_epoch_end(history):
        r = history[-1]
        r['lr'] = opt.param_groups[0]['lr']
        if args.trend_k:
            with torch.no_grad():
                model.eval()
                lp = sum(estimate_log_px(model, x, None, args.trend_k, args.chunk, g).double().sum().item() for x, _ in trend_test)
                r[f'test_nll_k{args.trend_k}'] = -lp / len(trend_test.images)
        r['wall_seconds'], r['cpu_seconds'] = time.perf_counter() - start, time.process_time() - cpu_start
        trend = f" | NLL (k={args.trend_k}, first {len(trend_test.images)} test images) {r[f'test_nll_k{args.trend_k}']:.2f}" if args.trend_k else ''
        print(f"[{name}] epoch {r['epoch']}: test −ELBO {r['test_loss']:.2f}{trend} nats | {r['wall_seconds'] / 60:.1f} min", flush=True)
        save_checkpoint(run_dir / 'checkpoint.pt', model, opt, config, train.image_shape, N_CLASSES, history)
        set_lr(r['epoch'] + 1)
        if args.max_minutes and r['wall_seconds'] > args.max_minutes * 60: raise Stop
        if args.max_cpu_minutes and r['cpu_seconds'] > args.max_cpu_minutes * 60: raise Stop

    history = []
    try: fit(model, opt, train, test, config.epochs, config.beta, history, on_epoch_end, progress=False, log=False,
             loss_fn=make_loss(config), warmup_epochs=config.warmup_epochs)
    except Stop: print(f"[{name}] stopped after epoch {len(history)}: time budget reached", flush=True)
    train_seconds, train_cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    eval_test = subset(test, args.eval_n)
    t0, c0 = time.perf_counter(), time.process_time()
    report = evaluate_model(model, eval_test, k=args.eval_k, chunk=args.chunk, progress=not args.no_progress)
    print(f"[{name}] test NLL (k={args.eval_k}, {report['n_examples']} test images) {report['test_nll']:.2f} nats", flush=True)
    return dict(config=name, objective=config.objective, iw_k=config.iw_k, epochs=len(history), train_seconds=train_seconds,
                train_cpu_seconds=train_cpu_seconds, eval_seconds=time.perf_counter() - t0, eval_cpu_seconds=time.process_time() - c0, eval_examples=report['n_examples'], anchor_nll=ANCHORS.get(name),
                target_nll=TARGETS.get(name), train_config=asdict(config),
                lr_schedule=args.lr_schedule, **report, history=history)


def table(record):
    "The results as a text table."
    head = f"MNIST (dynamically binarized) — {record['date']} — {record['device']}"
    cols = ['config', 'MLP', 'epochs', 'time (wall / CPU)', 'test ELBO', f"test NLL (k={record['eval_k']})", 'bits/dim', 'active units',
            'test images', 'Burda 2015', 'target']
    mlp = lambda c: '-'.join(map(str, [784, *c['hidden'], c['latent_dim']]))
    rows = [[r['config'], mlp(r['train_config']), str(r['epochs']), f"{r['train_seconds'] / 60:.1f} / {r['train_cpu_seconds'] / 60:.1f} min", f"{r['test_elbo']:.2f}",
             f"{r['test_nll']:.2f}", f"{r['bits_per_dim']:.4f}", f"{r['active_units']}/{len(r['kl_per_dim'])}",
             str(r['eval_examples']), f"{r['anchor_nll']:.2f}" if r['anchor_nll'] else '–',
             f"≤ {r['target_nll']:.1f}" if r['target_nll'] else '–'] for r in record['results']]
    w = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    line = lambda cells: ' | '.join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(cells))
    return '\n'.join([head, '(ELBO, NLL and anchors in nats per example; time = training incl. the per-epoch test passes '
                            'and checkpoints, wall clock / CPU)', line(cols),
                      '-+-'.join('-' * x for x in w)] + [line(r) for r in rows])


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
    p.add_argument('--configs', default='vae,iwae5,iwae50', help='comma-separated: vae, iwaeK (default vae,iwae5,iwae50)')
    p.add_argument('--epochs', type=int, default=1000, help='epochs per configuration (default 1000)')
    p.add_argument('--max-minutes', type=float, help='stop training a configuration after the epoch that passes this wall time')
    p.add_argument('--max-cpu-minutes', type=float, help='... or this much CPU time of the process (fair on a shared CPU)')
    p.add_argument('--hidden', type=int, nargs='+', default=[500, 500], help='hidden widths (default 500 500)')
    p.add_argument('--latent-dim', type=int, default=50, help='size of z (default 50)')
    p.add_argument('--batch-size', type=int, default=100, help='batch size (default 100)')
    p.add_argument('--lr', type=float, default=1e-3, help='(initial) learning rate of Adam (default 1e-3)')
    p.add_argument('--lr-schedule', choices=('constant', 'burda'), default='constant',
                   help="constant, or burda: Burda et al.'s 8 stages of 3^i epochs at lr·10^(-i/7), compressed to --epochs")
    p.add_argument('--eval-k', type=int, default=5000, help='importance samples for the test NLL (default 5000)')
    p.add_argument('--eval-n', type=int, default=0, help='evaluate on the first N test images only (default 0: all 10,000)')
    p.add_argument('--trend-k', type=int, default=100, help='samples for the per-epoch NLL trend (0: none; default 100)')
    p.add_argument('--trend-n', type=int, default=500, help='test images for the per-epoch NLL trend (default 500)')
    p.add_argument('--chunk', type=int, default=500, help='samples decoded at once in the NLL estimate (default 500)')
    p.add_argument('--seed', type=int, default=0, help='seed (default 0)')
    p.add_argument('--device', default='auto', help='auto, cpu, cuda (default auto)')
    p.add_argument('--threads', type=int, help='torch CPU threads (e.g. 1 when sharing a CPU)')
    p.add_argument('--data-dir', help='data folder (default $VAE_TUTORIAL_DATA, else ~/.cache/vae-tutorial)')
    p.add_argument('--runs', default='runs/benchmark', help='folder for the checkpoints (default runs/benchmark)')
    p.add_argument('--out', default='mnist_benchmark.json', help='results JSON (default mnist_benchmark.json)')
    p.add_argument('--merge', nargs='+', metavar='JSON', help='only combine the results of earlier runs into --out and print the table')
    p.add_argument('--no-progress', action='store_true', help='no progress bar during evaluation')
    args = p.parse_args(argv)
    if args.merge:
        record = merge(args.merge)
        write(record, args.out); print(table(record)); return record
    names = [n.strip() for n in args.configs.split(',')]
    for name in names: config_for(name, args)   # a bad name stops here, before any data is read or model trained
    if args.threads: torch.set_num_threads(args.threads)
    try:
        dev = pick_device(args.device)
        train, test = get_loaders('mnist', args.data_dir, 'dynamic', args.batch_size, dev, args.seed, download=False,
                                  test_batch_size=args.batch_size)
    except (RuntimeError, DataNotFoundError) as e: raise SystemExit(f"error: {e}") from None
    record = dict(benchmark='MNIST, dynamically binarized, one stochastic layer',
                  date=datetime.date.today().isoformat(), device=device_name(dev), torch=torch.__version__,
                  python=platform.python_version(), vae_tutorial=__version__, argv=sys.argv[1:] if argv is None else argv,
                  eval_k=args.eval_k, anchors=ANCHORS, targets=TARGETS, results=[])
    for name in names:
        record['results'].append(run_config(name, args, dev, train, test))
        write(record, args.out)
    print(table(record))
    return record


if __name__ == '__main__': main()
