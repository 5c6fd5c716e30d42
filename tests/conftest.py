import os

# Figures are drawn off-screen in tests; notebooks keep their inline backend when run by hand.
os.environ.setdefault('MPLBACKEND', 'Agg')
