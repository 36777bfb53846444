"""The Python API in a dozen lines: decode the data once, search a space given as a dict, use the result.

    python examples/python_api.py                # about 5 minutes on a laptop CPU (built-in demo data)
    python examples/python_api.py --smoke-test   # seconds: 2 trials of 1 epoch at 64 px
"""

import sys

import optuna

import searchseg

smoke = "--smoke-test" in sys.argv
data = searchseg.load_data(searchseg.resolve_spec(None), image_size=64 if smoke else 128)  # None: the demo
space = {
    "fixed": {"batch_size": 8, "augment": "light", "loss.ce": 1.0},
    "params": {"arch": {"choice": ["unet", "fpn"]}, "lr": {"loguniform": [3e-4, 3e-3]},
               "loss.dice": {"choice": [0.0, 0.5]}},
}
# a budget is planned from measured step costs; the smoke test sizes a tiny search by hand instead
size = {"samples": 2, "epochs": 1} if smoke else {"budget": "5m"}
result = searchseg.Search(
    space, data,
    search=searchseg.SearchConfig(searcher=optuna.samplers.TPESampler(seed=0, n_startup_trials=4), **size),
    output=searchseg.OutputConfig(results_dir="results", verbose=0),
).fit()
print("best:", result.best_config.arch, f"lr={result.best_config.lr:.2g}", f"val mIoU {result.best_value:.3f}")
print("test mIoU:", round(result.final.test_miou, 3), "| report:", result.report)
print(result.experiment().trials[["trial_id", "status", "arch", "lr", "best_val_miou"]].to_string(index=False))
