# How jobs are run. One switch: run.pl runs them on this machine; slurm.pl (coming with the
# cluster support) submits them to SLURM with the settings of conf/slurm.conf.
export train_cmd="run.pl"
export cuda_cmd="run.pl --gpu 1"
export mpi_cmd="mpiexec"              # MPI launcher for --parallel mpi (the MPICH wheel by default)
# export train_cmd="slurm.pl --config conf/slurm.conf"
# export cuda_cmd="slurm.pl --config conf/slurm.conf --gpu 1"
# export mpi_cmd="srun --mpi=pmi2"    # inside a SLURM allocation (MPICH; Open MPI: use mpiexec)
