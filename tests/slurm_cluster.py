"""A real one-node SLURM cluster for the tests of the cluster path (munge, slurmctld, slurmd from
Debian's packages; the configuration of reference/platform.md). Started once per test session
under a temporary directory and stopped at the end; tests skip with the reason when it cannot be
installed or started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

PACKAGES = ["slurm-wlm", "munge", "libpmix-dev"]


def _install() -> str:
    if shutil.which("slurmctld") and shutil.which("sbatch") and os.path.exists("/usr/sbin/munged"):
        return ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "SLURM is not installed (apt-get install slurm-wlm munge needs root)"
    for cmd in (["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES],
                ["bash", "-c", "apt-get update && apt-get install -y --no-install-recommends " + " ".join(PACKAGES)]):
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            return ""
    return "could not install SLURM from Debian's packages"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(d: str) -> str:
    mem_mib = int(open("/proc/meminfo").read().split()[1]) // 1024
    cpus = os.cpu_count() or 1
    # ports of our own, so that this cluster never talks to another one on the machine
    return f"""ClusterName=ci
SlurmctldHost=localhost
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerParameters=sched_interval=1
KillWait=5
NodeName=localhost CPUs={cpus} Sockets=1 CoresPerSocket={cpus} ThreadsPerCore=1 RealMemory={mem_mib * 3 // 4}
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""


def _munge_works() -> bool:
    """Whether munged answers (a credential can be made), not just whether its socket file exists."""
    try:
        return subprocess.run(["munge", "-n"], stdin=subprocess.DEVNULL, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class LocalSlurm:
    def __init__(self, workdir: str):
        self.dir = workdir
        self.env = None
        self.reason = ""

    def start(self) -> bool:
        self.reason = _install()
        if self.reason:
            return False
        for sub in ("state", "spool"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        conf = os.path.join(self.dir, "slurm.conf")
        with open(conf, "w") as f:
            f.write(_conf(self.dir))
        if not _munge_works():   # not running (a socket file left by a killed munged does not count)
            os.makedirs("/run/munge", exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            if not os.path.exists("/etc/munge/munge.key"):
                subprocess.run(["bash", "-c", "mungekey -c 2>/dev/null || create-munge-key -f"], capture_output=True)
            subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--force"], capture_output=True)
            self.started_munge = True   # ours: stopped with the cluster
        self.env = dict(os.environ, SLURM_CONF=conf)
        subprocess.run(["slurmctld", "-f", conf], env=self.env, capture_output=True)
        subprocess.run(["slurmd", "-f", conf, "-N", "localhost"], env=self.env, capture_output=True)
        for _ in range(60):
            p = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True, text=True)
            if p.returncode == 0 and p.stdout.strip() in ("idle", "mix", "alloc"):
                return True
            time.sleep(0.5)
        self.reason = "the local SLURM did not come up: " + self._tail("slurmctld.log") + self._tail("slurmd.log")
        self.stop()
        return False

    def _tail(self, name: str) -> str:
        try:
            return " | ".join(open(os.path.join(self.dir, name)).read().splitlines()[-3:])
        except OSError:
            return ""

    def stop(self) -> None:
        pid_files = [os.path.join(self.dir, name) for name in ("slurmd.pid", "slurmctld.pid")]
        if getattr(self, "started_munge", False):   # a munged that was running before is left alone
            pid_files.append("/run/munge/munged.pid")
        for pid_file in pid_files:
            try:
                pid = int(open(pid_file).read())
                os.kill(pid, 15)
            except (OSError, ValueError):
                pass
