"""Job launchers with Kaldi's ``run.pl`` / ``slurm.pl`` interface."""
