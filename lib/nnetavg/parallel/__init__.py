"""Parallel training: model averaging through files (here) and over MPI (``comm``)."""
