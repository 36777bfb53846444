"""The search: Ray Tune with Optuna and ASHA, the Ray trial, a time budget planned from measured step costs."""
