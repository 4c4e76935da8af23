"""The training loop, optimizers and learning-rate schedules."""
