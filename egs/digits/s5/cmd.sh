# How jobs are run: one switch. run.pl runs them on this machine; slurm.pl submits them to SLURM
# with the settings of conf/slurm.conf (partition, memory, GPUs; Kaldi's format).
export train_cmd="run.pl"
export cuda_cmd="run.pl --gpu 1"
export mpi_cmd="mpiexec"              # MPI launcher for --parallel mpi (the MPICH wheel by default)

# On a SLURM cluster, instead (failed jobs are retried once; preempted ones requeued up to 5 times):
# export train_cmd="slurm.pl --config conf/slurm.conf --retries 1"
# export cuda_cmd="slurm.pl --config conf/slurm.conf --retries 1 --gpu 1"
# export mpi_cmd="srun --mpi=pmi2"    # MPICH (the bundled wheel); with Open MPI use mpiexec inside an
#                                     # allocation (salloc -n N / sbatch -n N), not srun
