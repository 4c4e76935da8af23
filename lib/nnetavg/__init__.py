"""nnetavg: Kaldi-style parallel training of DNN acoustic models with natural-gradient SGD and
model averaging.

Importing the package imports numpy only: CuPy is imported by :mod:`nnetavg.backend` when a GPU is
asked for, mpi4py by :mod:`nnetavg.parallel.comm` when MPI is used.
"""

__version__ = "0.1.0"

from nnetavg.errors import NnetavgError  # noqa: E402,F401
