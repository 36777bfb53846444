"""The final model: which trial to continue or retrain, test metrics, overlays, export and the model card."""
