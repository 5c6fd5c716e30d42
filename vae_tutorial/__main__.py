"""`python -m vae_tutorial ...` is the `vae-tutorial` command; under `torchrun ... -m vae_tutorial train ...` every process
runs it (notebook 05b)."""
from vae_tutorial.cli import console

if __name__ == '__main__': console()
