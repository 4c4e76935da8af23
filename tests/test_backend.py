"""The device layer: numpy by default, a clear error for --use-gpu=yes without a GPU, and an
import of nnetavg that imports neither cupy nor mpi4py."""

import subprocess
import sys

import numpy as np
import pytest

from nnetavg import backend
from nnetavg.errors import NnetavgError
from tests.conftest import _cupy_or_reason, run_cmd


def test_import_pulls_in_neither_cupy_nor_mpi4py():
    code = ("import sys, nnetavg, nnetavg.io.nnet1, nnetavg.train.trainer, nnetavg.parallel.averaging, "
            "nnetavg.bin.nnet_train_simple; print('cupy' in sys.modules, 'mpi4py' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_use_gpu_choices():
    assert backend.select_device("no") is np
    cupy, reason = _cupy_or_reason()
    if cupy is None:
        with pytest.raises(NnetavgError, match="--use-gpu=yes but no GPU"):
            backend.select_device("yes")
        assert backend.select_device("optional") is np
    else:
        assert backend.select_device("yes") is cupy
    backend.select_device("no")
    with pytest.raises(NnetavgError, match="one of"):
        backend.select_device("maybe")


def test_use_gpu_yes_from_the_command_line(tmp_path):
    if _cupy_or_reason()[0] is not None:
        pytest.skip("a GPU is usable here")
    run_cmd(["nnet-init", "--input-dim=4", "--output-dim=2", "--hidden-layers=0", str(tmp_path / "m")])
    p = run_cmd(["nnet-compute-prob", "--use-gpu=yes", str(tmp_path / "m"), "ark:/dev/null", "ark:/dev/null"],
                check=False)
    assert p.returncode == 1 and "ERROR" in p.stderr and "no GPU" in p.stderr and "Traceback" not in p.stderr


def test_array_module_and_transfers(xp):
    a = xp.ones(3)
    assert backend.get_array_module(a) is xp
    assert backend.get_array_module(np.ones(2), None, 1.0) is np
    np.testing.assert_array_equal(backend.to_numpy(backend.to_device(np.arange(3), xp)), [0, 1, 2])
    if xp is not np:
        with pytest.raises(TypeError, match="mixed"):
            backend.get_array_module(a, np.ones(3))
