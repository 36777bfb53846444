"""Training one configuration in plain PyTorch: models, losses, optimizers, schedules, augmentation, metrics.

Ray never enters this package; ``tuning`` runs it as Ray Tune trials and ``local_trial`` runs it alone."""
