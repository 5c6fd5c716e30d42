import os

import pytest

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


# ---------------------------------------------------------------- the documentation site (tests/test_docs.py, tests/test_explorer.py)

@pytest.fixture(scope='session')
def site():
    "Build the site once per test session with the README's command; returns the site's folder."
    import subprocess, sys, time
    from nbdev.config import get_config
    cfg, t = get_config(), time.time()
    res = subprocess.run([sys.executable, 'tools/build_docs.py'], cwd=cfg.config_path, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f'build failed:\n{res.stdout[-5000:]}\n{res.stderr[-5000:]}'
    print(f'site built in {time.time() - t:.0f} s')
    return cfg.doc_path


class http_server:
    "`with http_server(folder) as base:` serves `folder` with `python -m http.server` on 127.0.0.1; `base` is its URL."
    def __init__(self, folder): self.folder = folder
    def __enter__(self):
        import socket, subprocess, sys, time, urllib.request
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, '-m', 'http.server', str(port), '--bind', '127.0.0.1',
                                      '--directory', str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f'http://127.0.0.1:{port}/'
        for _ in range(100):
            try: urllib.request.urlopen(base, timeout=2).read(); return base
            except OSError: time.sleep(0.1)
        self.proc.terminate()
        pytest.fail('python -m http.server did not start')
    def __exit__(self, *exc):
        self.proc.terminate(); self.proc.wait(timeout=10)
