import os

from vae_tutorial.data import data_root, find_idx_files

# Figures are drawn off-screen in tests; notebooks keep their inline backend when run by hand.
os.environ.setdefault('MPLBACKEND', 'Agg')

MNIST_ROOT = data_root()  # $VAE_TUTORIAL_DATA (CI points it at the shared datasets), else the user's cache folder
HAS_MNIST = all(find_idx_files([MNIST_ROOT / 'MNIST' / 'raw'], split) for split in ('train', 'test'))
NO_MNIST = f'no MNIST IDX files under {MNIST_ROOT}/MNIST/raw: set VAE_TUTORIAL_DATA to a folder that holds them'


def run_script(script, *args, cwd):
    "Run a Python script (e.g. one of benchmarks/) with `args` in the folder `cwd`; return (exit code, stdout + stderr)."
    import subprocess, sys
    p = subprocess.run([sys.executable, str(script), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr
