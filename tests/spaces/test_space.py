import pickle

import optuna
import pytest

from searchseg.errors import UserError
from searchseg.spaces.space import BUNDLED_SPACES, SearchSettings, SpaceSampler, asha_rungs, list_spaces, load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def write(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return str(path)


def test_bundled_spaces_load_and_ship_inside_the_package():
    assert {"arch_loss", "lr_wd", "augment", "full"} <= set(list_spaces())
    assert BUNDLED_SPACES.parent.name == "searchseg"
    for name in list_spaces():
        space = load_space(name)
        assert space.params and space.settings.samples >= 1


@pytest.mark.parametrize("name", ["arch_loss", "full", "lr_wd", "augment"])
def test_samples_stay_in_bounds_and_honour_conditionals(name):
    space = load_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(60):
        values = space.sample(study.ask())
        for key, param in space.params.items():
            if not param.is_active(values):
                assert key not in values, f"{key} sampled although its condition is false"
                continue
            _, distribution = param.resolve(values)
            value = values[key]
            if distribution.kind == "choice":
                assert value in distribution.args
            else:
                assert distribution.args[0] <= value <= distribution.args[1]
        if "focal_gamma" in space.params:
            assert ("focal_gamma" in values) == bool(values.get("loss.focal"))
        if values.get("arch") == "segformer" and name == "arch_loss":
            assert values["encoder"] in ("mit_b0", "resnet18")


def test_case_dependent_parameters_have_their_own_optuna_names():
    space = load_space("arch_loss")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    names = set()
    for _ in range(30):
        trial = study.ask()
        space.sample(trial)
        names |= set(trial.params)
    assert {"encoder:arch:segformer", "encoder:arch:default"} <= names


def test_sampler_pickles_for_the_searcher_checkpoint():
    sampler = pickle.loads(pickle.dumps(SpaceSampler(load_space("arch_loss"))))
    assert "arch" in sampler(optuna.create_study().ask())


VALID = """
search: {samples: 4, epochs: 3}
params:
  arch: {choice: [unet, fpn]}
  lr: {loguniform: [1.0e-4, 1.0e-2]}
"""


@pytest.mark.parametrize("text, fragment", [
    ("params: [", "does not parse"),
    ("serch: {}\nparams: {lr: {uniform: [0.1, 0.2]}}", "unknown top-level keys ['serch']"),
    ("search: {trials: 3}\nparams: {lr: {uniform: [0.1, 0.2]}}", "unknown search settings ['trials']"),
    ("search: {grace_period: 9, epochs: 3}\nparams: {lr: {uniform: [0.1, 0.2]}}", "grace_period"),
    ("params: {lr: {uniform: [0.2, 0.1]}}", "params.lr: uniform range [0.2, 0.1] needs low < high"),
    ("params: {lr: {loguniform: [0.0, 0.1]}}", "loguniform needs low > 0"),
    ("params: {lr: {uniform: [0.1, 20.0]}}", "above its range"),
    ("params: {learning_rate: {uniform: [0.1, 0.2]}}", "unknown config key 'learning_rate'"),
    ("params: {arch: {choice: [unet, unet3]}}", "unknown architecture 'unet3'"),
    ("params: {encoder: {choice: [resnet18, resnet999]}}", "unknown encoder 'resnet999'"),
    ("params: {augment: {choice: [wild]}}", "unknown augmentation preset 'wild'"),
    ("params: {loss.hinge: {uniform: [0, 1]}}", "unknown loss 'hinge'"),
    ("params: {lr: {uniform: [0.1, 0.2], choice: [1]}}", "exactly one of"),
    ("params:\n  focal_gamma: {uniform: [1, 2], when: {loss.focal: nonzero}}", "not a parameter declared before"),
    ("params:\n  arch: {choice: [unet, fpn]}\n  encoder: {by: arch, cases: {unet: {choice: [resnet18]}}}",
     "no case for ['fpn'] and no 'default'"),
    ("params:\n  lr: {uniform: [0.1, 0.2]}\n  encoder: {by: lr, cases: {default: {choice: [resnet18]}}}",
     "by must name an earlier 'choice' parameter"),
    ("params:\n  arch: {choice: [unet]}\n  encoder: {by: arch, cases: {fpn: {choice: [resnet18]}, default: "
     "{choice: [resnet18]}}}", "cases ['fpn'] are not choices of 'arch'"),
    ("search: {samples: 4}", "no parameters to search"),
])
def test_validation_errors_name_the_file_and_key(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as error:
        load_space(path)
    assert fragment in str(error.value) and "space.yaml" in str(error.value)


def test_valid_file_and_unknown_name(tmp_path):
    assert load_space(write(tmp_path, VALID)).settings.epochs == 3
    with pytest.raises(UserError, match="unknown search space 'arch_lost'; bundled spaces: arch_loss"):
        load_space("arch_lost")


START_SPACE = """
search: {samples: 4}
params:
  arch: {choice: [unet, fpn]}
  encoder:
    by: arch
    cases:
      fpn: {choice: [mobilenet_v2]}
      default: {choice: [resnet18, resnet34]}
  loss.focal: {choice: [0.0, 0.5]}
  focal_gamma: {uniform: [1.0, 4.0], when: {loss.focal: nonzero}}
  lr: {loguniform: [1.0e-4, 1.0e-2]}
start:
"""


def test_start_configurations_become_the_optuna_parameters_they_activate(tmp_path):
    space = load_space(write(tmp_path, START_SPACE
                             + "  - {arch: unet, encoder: resnet34, loss.focal: 0.0, lr: 1.0e-3}\n"
                             + "  - {arch: fpn, encoder: mobilenet_v2, loss.focal: 0.5, focal_gamma: 2.0,"
                             + " lr: 3.0e-3}\n"))
    assert [space.optuna_point(start) for start in space.start] == [
        {"arch": "unet", "encoder:arch:default": "resnet34", "loss.focal": 0.0, "lr": 1e-3},
        {"arch": "fpn", "encoder:arch:fpn": "mobilenet_v2", "loss.focal": 0.5, "focal_gamma": 2.0, "lr": 3e-3},
    ]
    study = optuna.create_study()  # an enqueued point is what define-by-run sampling returns first
    study.enqueue_trial(space.optuna_point(space.start[1]))
    assert space.sample(study.ask()) == space.start[1]


@pytest.mark.parametrize(("entry", "message"), [
    ("{arch: unet, encoder: resnet18, loss.focal: 0.0}", "no value for 'lr'"),
    ("{arch: unet, encoder: resnet18, loss.focal: 0.5, lr: 1.0e-3}", "no value for 'focal_gamma'"),
    ("{arch: fpn, encoder: resnet18, loss.focal: 0.0, lr: 1.0e-3}", "encoder='resnet18' is outside"),
    ("{arch: unet, encoder: resnet18, loss.focal: 0.0, lr: 1.0}", "lr=1.0 is outside"),
    ("{arch: unet, encoder: resnet18, loss.focal: 0.0, lr: 1.0e-3, batch_size: 4}", "not searched parameters"),
    ("unet", "start must be a list of configurations"),
])
def test_bad_start_configurations_name_the_entry_and_the_key(tmp_path, entry, message):
    text = START_SPACE.replace("start:\n", "start: unet\n") if entry == "unet" else START_SPACE + f"  - {entry}\n"
    with pytest.raises(UserError, match=message) as error:
        load_space(write(tmp_path, text))
    assert "start" in str(error.value)


def test_a_space_lists_every_model_it_can_sample(tmp_path):
    space = load_space(write(tmp_path, START_SPACE))
    assert space.models() == [("unet", "resnet18"), ("unet", "resnet34"), ("fpn", "mobilenet_v2")]
    assert load_space("lr_wd").models() == [("unet", "resnet18")]  # fixed model
    assert all(load_space(name).start for name in list_spaces())  # every bundled space starts from the recipe


def test_asha_rungs_end_at_the_last_epoch_and_are_shared_by_the_settings():
    assert asha_rungs(1, 6, 3) == [1, 3, 6]
    assert asha_rungs(1, 9, 3) == [1, 3, 9]
    assert asha_rungs(2, 2, 3) == [2]  # grace period = budget: one rung, nothing stopped early
    settings = SearchSettings(samples=9, epochs=9, grace_period=1, reduction_factor=3)
    assert settings.rungs() == [1, 3, 9]
    assert settings.expected_trial_epochs() == 9 * 1 + 3 * 2 + 1 * 6
