"""Errors a user can act on.

Library code raises :class:`NnetavgError` with a message that names the file, the utterance and
what is wrong; the command-line layer prints it as one ``ERROR (...)`` line and exits non-zero,
without a traceback. Anything else escaping to the command line is a bug and keeps its traceback.
"""


class NnetavgError(Exception):
    """An error caused by the input or the configuration, reported to the user as one line."""


class FormatError(NnetavgError):
    """A file is not in the Kaldi format expected (truncated, corrupt or of another kind)."""


class TopologyError(NnetavgError):
    """Two networks (or a network and data) do not fit together."""


class ObjectiveError(NnetavgError):
    """Training diverged: the objective became NaN or infinite."""


class NonFiniteUpdate(ObjectiveError):
    """One minibatch's update of a component is NaN or infinite (the objective is finite): the
    trainer skips it and the components below, counts and logs it, and goes on (as nnet3 does)."""
