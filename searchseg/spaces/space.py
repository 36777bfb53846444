"""Search spaces: declarative YAML files, validated on load, sampled by Optuna define-by-run.

A space file::

    description: architecture x encoder x loss mix
    search:                        # the search's own settings (command-line flags override them)
      samples: 10
      epochs: 6
      grace_period: 1              # ASHA: first rung, in epochs
      reduction_factor: 3          # ASHA: keep the top 1/3 at each rung
    fixed:                         # config keys held constant in every trial
      image_size: 128
    params:                        # config keys searched, in order
      arch: {choice: [unet, fpn]}
      lr: {loguniform: [1.0e-4, 3.0e-3]}
      encoder:                     # a distribution per value of an earlier parameter
        by: arch
        cases:
          unet: {choice: [resnet18, resnet34]}
          default: {choice: [resnet18]}
      loss.focal: {choice: [0.0, 0.5]}
      focal_gamma:                 # exists only when the condition holds
        uniform: [1.0, 4.0]
        when: {loss.focal: nonzero}
    start:                         # known-good configurations, evaluated before TPE samples
      - {arch: unet, lr: 1.0e-3, encoder: resnet34, loss.focal: 0.0}

Distributions: ``choice``, ``uniform``, ``loguniform``, ``int`` (``[low, high]``, optional ``step`` and
``log``). A plain value under ``params`` is fixed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from searchseg.errors import UserError
from searchseg.spaces.config import LOSS_PREFIX, TrialConfig, is_entry_option, is_loss_weight

BUNDLED_SPACES = Path(__file__).resolve().parents[1] / "search_spaces"
DISTRIBUTIONS = ("choice", "uniform", "loguniform", "int")
METRICS = ("val_miou", "val_dice", "val_pixel_accuracy", "val_loss")
# What every trial measures of its model before training (training/costs.ModelCosts): objectives to minimise.
COST_OBJECTIVES = ("params_m", "gmacs", "latency_ms", "batch_latency_ms")  # also trials.csv's cost columns
# Optuna name of a case-dependent parameter: "encoder:arch:unet". Colons are valid in the parameter names of
# MLflow, W&B and TensorBoard, and not Tune's nesting separator "/".
CASE_SEPARATOR = ":"


@dataclass
class SearchSettings:
    samples: int = 8
    epochs: int = 4
    grace_period: int = 1
    reduction_factor: int = 2
    metric: str = "val_miou"
    mode: str = "max"
    concurrency: int | None = None
    seed: int = 0
    n_startup_trials: int | None = None  # TPE's random start; default max(2, samples // 4)
    final_share: float = 0.5  # with --budget: the part of the time left after loading that trains the final model
    objectives: list[str] = field(default_factory=list)  # costs minimised beside the metric (a Pareto search)
    max_latency_ms: float | None = None  # a trial whose latency_ms is above it is not trained

    def validate(self, where: str) -> None:
        for name in ("samples", "epochs", "grace_period", "reduction_factor", "seed", "concurrency",
                     "n_startup_trials"):
            value = getattr(self, name)
            if not (value is None and name in ("concurrency", "n_startup_trials")) and (
                    not isinstance(value, int) or isinstance(value, bool)):
                raise UserError(f"{where}: search.{name} must be a whole number, got {value!r}")
        if not isinstance(self.final_share, (int, float)) or isinstance(self.final_share, bool):
            raise UserError(f"{where}: search.final_share must be a number, got {self.final_share!r}")
        checks = [
            (self.samples >= 1, "samples must be >= 1"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (1 <= self.grace_period <= self.epochs, f"grace_period must be in 1..epochs ({self.epochs})"),
            (self.reduction_factor >= 2, "reduction_factor must be >= 2"),
            (self.metric in METRICS, f"metric must be one of {', '.join(METRICS)}"),
            (self.mode in ("max", "min"), "mode must be max or min"),
            (self.concurrency is None or self.concurrency >= 1, "concurrency must be >= 1"),
            (self.n_startup_trials is None or self.n_startup_trials >= 0, "n_startup_trials must be >= 0"),
            (0.0 < self.final_share < 1.0, "final_share must be between 0 and 1"),
            (isinstance(self.objectives, list) and all(o in COST_OBJECTIVES for o in self.objectives)
             and len(set(self.objectives)) == len(self.objectives),
             f"objectives must list costs to minimise beside the metric, each once: {', '.join(COST_OBJECTIVES)}"),
            (self.max_latency_ms is None or (isinstance(self.max_latency_ms, (int, float))
                                             and not isinstance(self.max_latency_ms, bool) and self.max_latency_ms > 0),
             "max_latency_ms must be a number of milliseconds above 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"{where}: search.{message}")

    @property
    def directions(self) -> dict[str, str]:
        """Every objective with its direction: the metric first, then the costs (minimised)."""
        return {self.metric: self.mode, **{cost: "min" for cost in self.objectives}}

    @property
    def startup_trials(self) -> int:
        return self.n_startup_trials if self.n_startup_trials is not None else max(2, self.samples // 4)

    def rungs(self) -> list[int]:
        return asha_rungs(self.grace_period, self.epochs, self.reduction_factor)

    def expected_trial_epochs(self) -> float:
        """Trial-epochs successive halving spends: every trial reaches the first rung (grace period),
        1/reduction_factor of them the next rung, and so on up to ``epochs``."""
        total, survivors, reached = 0.0, float(self.samples), 0
        for rung in self.rungs():
            total += survivors * (rung - reached)
            reached, survivors = rung, survivors / self.reduction_factor
        return total


def parse_objectives(text: str) -> tuple[str, str, list[str]]:
    """``"val_miou:max,latency_ms:min"`` -> (metric, mode, costs): the first names the metric, the rest costs."""
    pairs = [item.strip().partition(":") for item in text.split(",") if item.strip()]
    if not pairs:
        raise UserError("--objectives is empty; e.g. --objectives val_miou:max,latency_ms:min")
    (metric, _, mode), costs = pairs[0], pairs[1:]
    if metric not in METRICS or mode not in ("max", "min"):
        raise UserError(f"--objectives {text}: the first must be a metric with its direction ({', '.join(METRICS)}, "
                        "then :max or :min), e.g. val_miou:max")
    for cost, _, direction in costs:
        if cost not in COST_OBJECTIVES or direction not in ("", "min"):
            raise UserError(f"--objectives {text}: {cost}:{direction or 'min'} is not a cost to minimise; use "
                            f"{', '.join(f'{c}:min' for c in COST_OBJECTIVES)}")
    return metric, mode, [cost for cost, _, _ in costs]


def asha_rungs(grace_period: int, max_epochs: int, reduction_factor: int) -> list[int]:
    """Where ASHA compares trials: ``grace_period * reduction_factor**k`` epochs below ``max_epochs``, then
    ``max_epochs`` itself, where every trial still running ends. The one place rungs are computed."""
    rungs, rung = [], grace_period
    while rung < max_epochs:
        rungs.append(int(rung))
        rung *= reduction_factor
    return [*rungs, max_epochs]


@dataclass
class Distribution:
    kind: str
    args: Any
    step: float | None = None
    log: bool = False

    def central(self) -> Any:
        """A representative value: the first choice, or the (geometric) middle of a range."""
        if self.kind == "choice":
            return self.args[0]
        low, high = self.args
        if self.kind == "loguniform" or self.log:
            middle = math.sqrt(low * high)
        else:
            middle = (low + high) / 2
        return round(middle) if self.kind == "int" else middle

    def admits(self, value: Any) -> bool:
        if self.kind == "choice":
            return value in self.args
        low, high = self.args
        number = int if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, number) or not low <= value <= high:
            return False
        return self.step is None or abs((value - low) / self.step - round((value - low) / self.step)) < 1e-9

    def suggest(self, trial, name: str) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(name, self.args)
        low, high = self.args
        if self.kind == "int":
            return trial.suggest_int(name, low, high, step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, low, high, log=self.kind == "loguniform", step=self.step)


@dataclass
class Param:
    key: str
    distribution: Distribution | None = None
    by: str | None = None
    cases: dict[str, Distribution] = field(default_factory=dict)
    when: dict[str, Any] = field(default_factory=dict)

    def is_active(self, values: dict) -> bool:
        for other, wanted in self.when.items():
            value = values.get(other)
            if wanted == "nonzero":
                if not value:
                    return False
            elif value not in (wanted if isinstance(wanted, list) else [wanted]):
                return False
        return True

    def resolve(self, values: dict) -> tuple[str, Distribution]:
        """The Optuna parameter name and distribution given the values sampled so far."""
        if self.distribution is not None:
            return self.key, self.distribution
        by = str(self.by)
        case = str(values[by])
        if case in self.cases:
            return CASE_SEPARATOR.join((self.key, by, case)), self.cases[case]
        return CASE_SEPARATOR.join((self.key, by, "default")), self.cases["default"]


@dataclass
class SearchSpace:
    name: str
    source: Path
    description: str
    settings: SearchSettings
    fixed: dict[str, Any]
    params: dict[str, Param]
    text: str
    start: list[dict[str, Any]] = field(default_factory=list)

    def sample(self, trial) -> dict[str, Any]:
        """Define-by-run: ask ``trial`` for each active parameter; return the searched config keys."""
        values: dict[str, Any] = {}
        for key, param in self.params.items():
            if param.is_active(values):
                name, distribution = param.resolve(values)
                values[key] = distribution.suggest(trial, name)
        return values

    def optuna_point(self, config: dict[str, Any]) -> dict[str, Any]:
        """A start configuration (config keys) as the Optuna parameters the sampler will ask for."""
        point: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for key, param in self.params.items():
            if param.is_active(values):
                name, _ = param.resolve({**values, **config})
                values[key] = point[name] = config[key]
        return point

    def admits(self, config: dict[str, Any]) -> bool:
        """Whether the space could have sampled ``config`` (searched keys): every parameter active under it has a
        value its distribution holds."""
        for key, param in self.params.items():
            if param.is_active(config):
                if key not in config or not param.resolve(config)[1].admits(config[key]):
                    return False
        return True

    def choices(self, key: str, fixed_value: Any) -> list:
        """The values the space's choice of ``key`` can take; ``[fixed_value]`` when it does not choose ``key``."""
        param = self.params.get(key)
        if param and param.distribution and param.distribution.kind == "choice":
            return list(param.distribution.args)
        return [fixed_value]

    def models(self) -> list[tuple[str, str]]:
        """Every (architecture, encoder) pair the space can sample, in declaration order."""
        base = TrialConfig.from_flat({k: v for k, v in self.fixed.items() if k in ("arch", "encoder")})
        encoder_param = self.params.get("encoder")
        pairs = []
        for arch in self.choices("arch", base.arch):
            if encoder_param is None:
                encoders = [base.encoder]
            else:
                distribution = encoder_param.resolve({"arch": arch, encoder_param.by: arch})[1] \
                    if encoder_param.by else encoder_param.resolve({})[1]
                encoders = distribution.args if distribution.kind == "choice" else [base.encoder]
            pairs += [(arch, encoder) for encoder in encoders]
        return pairs

    def central_values(self) -> dict[str, Any]:
        """The space's representative configuration (searched keys only), conditions honoured."""
        values: dict[str, Any] = {}
        for key, param in self.params.items():
            if param.is_active(values):
                values[key] = param.resolve(values)[1].central()
        return values


class SpaceSampler:
    """The define-by-run function handed to OptunaSearch; a class so the searcher can be pickled."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def __call__(self, trial) -> dict[str, Any]:
        return self.space.sample(trial)


def trial_config_from_tune(config: dict[str, Any]) -> dict[str, Any]:
    """Drop Optuna's case-dependent parameter names (``encoder:arch:unet``), keeping config keys."""
    return {k: v for k, v in config.items() if CASE_SEPARATOR not in k}


def merged_config(fixed: dict[str, Any], sampled: dict[str, Any]) -> TrialConfig:
    """A trial's config: the fixed keys with a sample's over them (Optuna's case-dependent names dropped). Every
    stage builds a trial's config here, so a sample means the same config in a trial, the final model and a report."""
    return TrialConfig.from_flat({**fixed, **trial_config_from_tune(sampled)})


def find_space(name_or_path: str) -> Path:
    """A bundled space by name (``arch_loss``) or any YAML file by path."""
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise UserError(f"search space file {path} does not exist")
        return path
    bundled = BUNDLED_SPACES / f"{name_or_path}.yaml"
    if not bundled.is_file():
        raise UserError(f"unknown search space {name_or_path!r}; bundled spaces: {', '.join(list_spaces())}, "
                        "or pass a path to a YAML file")
    return bundled


def list_spaces() -> list[str]:
    return sorted(p.stem for p in BUNDLED_SPACES.glob("*.yaml"))


def load_space(name_or_path: str, check_names: bool = True, named_by_user: bool = True) -> SearchSpace:
    """A space file, checked. ``check_names=False`` leaves architecture, encoder, loss and preset names to the
    trials: a saved space read back for a report was checked when its search ran, and reading it then
    imports neither torch nor the model registries. ``named_by_user``: the plugins under its ``fixed`` may be
    imported (a space the user gave); a results folder's saved space is not (``plugins.load_plugins``)."""
    path = find_space(name_or_path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise UserError(f"search space {path} does not parse: {' '.join(str(err).split())}") from None
    return space_from_mapping(raw, path.stem, path, text, check_names, named_by_user)


def as_space(space: str | Path | dict[str, Any] | SearchSpace) -> SearchSpace:
    """A space from what a caller holds: a bundled name or a file (``load_space``), a mapping with a space file's
    keys, or a ``SearchSpace``, copied so that a search's settings never change the caller's object."""
    if isinstance(space, SearchSpace):
        return copy.deepcopy(space)
    if isinstance(space, dict):
        name = str(space.get("name", "custom"))
        body = {key: value for key, value in space.items() if key != "name"}
        return space_from_mapping(copy.deepcopy(body), name, Path(f"<{name}>"), yaml.safe_dump(body, sort_keys=False))
    return load_space(str(space))


def space_from_mapping(raw: Any, name: str, source: Path, text: str, check_names: bool = True,
                       named_by_user: bool = True) -> SearchSpace:
    """Check a space file's content (``description``, ``search``, ``fixed``, ``params``, ``start``);
    ``named_by_user``: see ``load_space``."""
    where = f"search space {source}"
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping with description, search, fixed and params")
    unknown = set(raw) - {"description", "search", "fixed", "params", "start"}
    if unknown:
        raise UserError(f"{where}: unknown top-level keys {sorted(unknown)}; "
                        "valid: description, search, fixed, params, start")

    settings_raw = raw.get("search") or {}
    valid_settings = {f.name for f in fields(SearchSettings)}
    if not isinstance(settings_raw, dict) or set(settings_raw) - valid_settings:
        bad = sorted(set(settings_raw) - valid_settings) if isinstance(settings_raw, dict) else settings_raw
        raise UserError(f"{where}: unknown search settings {bad}; valid: {', '.join(sorted(valid_settings))}")
    try:
        settings = SearchSettings(**settings_raw)
    except TypeError as err:
        raise UserError(f"{where}: search: {err}") from None
    settings.validate(where)

    fixed = dict(raw.get("fixed") or {})
    if check_names:  # a plugin's models and losses are named in this file: registered before they are checked
        from searchseg.training.plugins import load_plugins, trust_plugins

        if named_by_user:
            trust_plugins(fixed.get("plugins"))
        load_plugins(fixed.get("plugins"))
    params: dict[str, Param] = {}
    for key, spec in (raw.get("params") or {}).items():
        if isinstance(spec, dict):
            params[key] = _parse_param(key, spec, params, f"{where}: params.{key}", check_names)
        else:
            fixed[key] = spec
    for key, value in fixed.items():
        _check_value(key, value, f"{where}: fixed.{key}", check_names)
    if not params:
        raise UserError(f"{where}: no parameters to search under 'params'")
    space = SearchSpace(name, source, str(raw.get("description", "")), settings, fixed, params, text)
    space.start = _parse_start(raw.get("start") or [], space, where)
    return space


def _parse_start(entries: Any, space: SearchSpace, where: str) -> list[dict[str, Any]]:
    """Start configurations must give a value, valid for its distribution, to every parameter they activate."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UserError(f"{where}: start must be a list of configurations (mappings of searched keys to values)")
    parsed = []
    for number, entry in enumerate(entries, 1):
        at = f"{where}: start[{number}]"
        unknown = set(entry) - set(space.params)
        if unknown:
            raise UserError(f"{at}: {sorted(unknown)} are not searched parameters; searched: "
                            f"{', '.join(space.params)}")
        values: dict[str, Any] = {}
        for key, param in space.params.items():
            if not param.is_active(values):
                continue
            if key not in entry:
                raise UserError(f"{at}: no value for {key!r}; a start configuration gives every active parameter")
            _, distribution = param.resolve({**values, **entry})
            if not distribution.admits(entry[key]):
                raise UserError(f"{at}: {key}={entry[key]!r} is outside its distribution {distribution.kind} "
                                f"{distribution.args}")
            values[key] = entry[key]
        parsed.append(values)
    return parsed


def _parse_distribution(spec: dict, key: str, where: str, check_names: bool) -> Distribution:
    kinds = [k for k in DISTRIBUTIONS if k in spec]
    if len(kinds) != 1:
        raise UserError(f"{where}: give exactly one of {', '.join(DISTRIBUTIONS)} (or by/cases)")
    kind, args = kinds[0], spec[kinds[0]]
    extra = set(spec) - {kind, "step", "log", "when"}
    if extra:
        raise UserError(f"{where}: unknown keys {sorted(extra)}")
    if kind == "choice":
        if not isinstance(args, list) or not args or len(set(map(str, args))) != len(args):
            raise UserError(f"{where}: choice needs a non-empty list of distinct values")
        for value in args:
            _check_value(key, value, where, check_names)
        return Distribution(kind, args)
    if not (isinstance(args, list) and len(args) == 2 and all(isinstance(v, (int, float)) for v in args)):
        raise UserError(f"{where}: {kind} needs [low, high]")
    low, high = args
    if not low < high:
        raise UserError(f"{where}: {kind} range [{low}, {high}] needs low < high")
    if kind == "loguniform" and low <= 0:
        raise UserError(f"{where}: loguniform needs low > 0, got {low}")
    if kind == "int" and not all(isinstance(v, int) for v in args):
        raise UserError(f"{where}: int needs integer bounds")
    step, log = spec.get("step"), spec.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"{where}: log must be true or false, got {log!r}")
    if step is not None:
        number = int if kind == "int" else (int, float)
        if isinstance(step, bool) or not isinstance(step, number) or not step > 0:
            wanted = "a positive integer" if kind == "int" else "a positive number"
            raise UserError(f"{where}: step must be {wanted}, got {step!r}")
        if log or kind == "loguniform":
            raise UserError(f"{where}: step and a log scale do not go together (Optuna samples one or the other)")
        if step > high - low:
            raise UserError(f"{where}: step {step} is wider than the range [{low}, {high}]")
    for value in args:
        _check_value(key, value, where, check_names)
    return Distribution(kind, [low, high], step, log)


def _parse_param(key: str, spec: dict, earlier: dict[str, Param], where: str, check_names: bool) -> Param:
    _check_key(key, where, check_names)
    when = spec.get("when") or {}
    if not isinstance(when, dict):
        raise UserError(f"{where}: when must map earlier parameters to a value, a list of values, or 'nonzero'")
    for other in when:
        if other not in earlier:
            raise UserError(f"{where}: when refers to {other!r}, which is not a parameter declared before it")
    if "by" in spec or "cases" in spec:
        by, cases = spec.get("by"), spec.get("cases")
        extra = set(spec) - {"by", "cases", "when"}
        if extra:
            raise UserError(f"{where}: unknown keys {sorted(extra)} beside by/cases")
        chooser = earlier[by].distribution if by in earlier else None
        if chooser is None or chooser.kind != "choice":
            raise UserError(f"{where}: by must name an earlier 'choice' parameter, got {by!r}")
        if not isinstance(cases, dict) or not cases:
            raise UserError(f"{where}: cases must map values of {by!r} to distributions")
        options = {str(v) for v in chooser.args}
        unknown_cases = set(map(str, cases)) - options - {"default"}
        if unknown_cases:
            raise UserError(f"{where}: cases {sorted(unknown_cases)} are not choices of {by!r}")
        if options - set(map(str, cases)) and "default" not in cases:
            raise UserError(f"{where}: no case for {sorted(options - set(map(str, cases)))} and no 'default'")
        parsed = {str(c): _parse_distribution(d, key, f"{where}.cases.{c}", check_names) for c, d in cases.items()}
        return Param(key, by=by, cases=parsed, when=when)
    return Param(key, _parse_distribution(spec, key, where, check_names), when=when)


def _check_key(key: str, where: str, check_names: bool) -> None:
    valid = {f.name for f in fields(TrialConfig)} - {"loss", "options"}
    if is_loss_weight(key) or is_entry_option(key):
        if not check_names:
            return
        # imports torch and smp: only when names are checked
        from searchseg.training.engine import check_entry_options
        from searchseg.training.losses import check_loss_names

        try:
            if is_loss_weight(key):
                check_loss_names([key[len(LOSS_PREFIX):]])
            else:
                check_entry_options([key])
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
    elif key not in valid:
        raise UserError(f"{where}: unknown config key {key!r}; valid keys: {', '.join(sorted(valid))}, loss.<name>, "
                        "KIND.<name>.<parameter>")


def _check_value(key: str, value: Any, where: str, check_names: bool) -> None:
    """A value must be valid for its config key: type, range and (with ``check_names``) registry name."""
    _check_key(key, where, check_names)
    try:
        if is_loss_weight(key):
            if not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
                raise UserError(f"loss weight {value!r} must be a number >= 0")
            return
        TrialConfig.from_flat({key: value})
        if not check_names:
            return
        # the registries import torch, smp and albumentations: only when names are checked
        from searchseg.training.augment import check_preset
        from searchseg.training.models import check_model_names
        from searchseg.training.optim import OPTIMIZERS
        from searchseg.training.schedules import check_schedule

        if key == "arch":
            check_model_names(value, "resnet18")
        elif key == "encoder":
            check_model_names("unet", value)
        elif key == "augment":
            check_preset(value)
        elif key == "optimizer":
            OPTIMIZERS.check(value)
        elif key == "scheduler":
            check_schedule(value)
    except UserError as err:
        raise UserError(f"{where}: {err}") from None
