"""searchseg: hyperparameter search for semantic image segmentation.

The engine (data, models, losses, metrics, training) is plain PyTorch; Ray Tune and
Optuna are launchers around it.
"""

__version__ = "0.1.0"
