import importlib
import pickle
import sys

import pytest

from searchseg.moved_modules import MOVED
from searchseg.training.models import CLASSIC_ARCHS


@pytest.mark.parametrize("old_path", sorted(MOVED))
def test_a_flat_path_of_0_1_is_the_module_at_its_new_path(old_path):
    sys.modules.pop(old_path, None)
    with pytest.warns(DeprecationWarning, match=f"{old_path} moved to {MOVED[old_path]}; the old path goes in"):
        old = importlib.import_module(old_path)
    new = importlib.import_module(MOVED[old_path])
    assert old is new
    assert new.__spec__.name == MOVED[old_path] and new.__name__ == MOVED[old_path]


@pytest.mark.parametrize("old_path, name", [
    # what a Ray Tune experiment saved before the move holds in tuner.pkl and searcher-state-*.pkl
    ("searchseg.space", "SpaceSampler"),
    ("searchseg.results_writer", "ResultsWriter"),
    ("searchseg.progress", "SearchProgress"),
    ("searchseg.status", "TrialStatus"),
    ("searchseg.report.optuna_study", "StudyWriter"),  # held by ResultsWriter, moved to tracking/
])
def test_a_pickle_naming_a_flat_path_loads_the_moved_class(old_path, name):
    loaded = pickle.loads(f"c{old_path}\n{name}\n.".encode())
    assert loaded is getattr(importlib.import_module(MOVED[old_path]), name)


def test_a_registration_through_the_old_path_reaches_the_one_registry():
    from searchseg.models import register_arch

    from searchseg import arch_names

    @register_arch("moved_modules_probe")
    def probe(in_channels, classes):
        raise AssertionError("never built")

    try:
        assert "moved_modules_probe" in arch_names()
    finally:
        del CLASSIC_ARCHS["moved_modules_probe"]
