"""The pipeline's stages, one typer command per module: ``python -m stages.<name>``."""

import os

# One BLAS thread unless the user says otherwise. Measured on the 2-core machine (see
# README): at batch 32 a second thread never sped up training and under load made
# epochs twice as slow. Set before any stage imports numpy, which reads it once.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
