"""Would ``selection.choose_trial`` have kept the start configuration in the 900 s Dubai run that lost?

That run (``benchmarks/RESULTS.md``, row 6 at T = 900 s, first run) continued TPE's SegFormer/MiT-B0 from
scratch, which led the ResNet-18 start configuration on validation after 270 steps and never improved in
115 more epochs (test 0.279 against the recipe's 0.356). This trains the two trials again as that run's plan
trained them (18 epochs of 15 steps, the schedule planned over 93 epochs, seed 0, 128 px) and applies the
rule to them: the sampled trial's validation class counts over its last epochs against the start trial's.

``python -m benchmarks.trial_choice`` prints both trials' scores, the sampled trial's win rate over resamples
of the validation images (whichever led) and the rule's decision.
"""

from __future__ import annotations

import argparse
import os
from collections import deque

import torch

from benchmarks.equal_time import DATASETS, decoded, space_trial_config
from searchseg.spaces.space import load_space
from searchseg.training.class_counts import bootstrap_win_rate
from searchseg.training.engine import StopTraining, fit
from searchseg.tuning.selection import RECENT_EPOCHS, Candidate, choose_trial

TRIAL_EPOCHS, HORIZON_EPOCHS, EPOCH_STEPS = 18, 93, 15
SAMPLED = {"arch": "segformer", "encoder": "mit_b0", "lr": 0.0005808440646224611, "loss.ce": 0.536808885607213,
           "loss.dice": 1.0, "loss.focal": 0.0, "loss.lovasz": 0.0}


def train_trial(space, dataset: dict, searched: dict, data) -> tuple[float, object]:
    """The trial's best validation mIoU and its validation class counts summed over its last epochs."""
    config = space_trial_config(space, dataset, searched, image_size=128, epochs=HORIZON_EPOCHS,
                                epoch_steps=EPOCH_STEPS, seed=0)
    recent = deque(maxlen=RECENT_EPOCHS)

    def keep_counts(row: dict, trainer) -> None:
        recent.append(trainer.eval_counts)
        if trainer.epoch >= TRIAL_EPOCHS:
            raise StopTraining("the trial's epochs are done")

    result = fit(config, data, keep_counts, progress=False)
    print(f"{searched['arch']}/{searched['encoder']}: best val mIoU {result.best_miou:.4f}, last "
          f"{result.history[-1]['val_miou']:.4f}", flush=True)
    return result.best_miou, sum(recent)


def main() -> None:
    argparse.ArgumentParser(prog="python -m benchmarks.trial_choice", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    space = load_space("arch_loss")
    dataset = DATASETS["dubai_aerial"]
    data = decoded(dataset)
    trials = {"start": space.start[0], "sampled": SAMPLED}
    trained = {name: train_trial(space, dataset, searched, data) for name, searched in trials.items()}
    candidates = [Candidate(name, trials[name], score, name) for name, (score, _) in trained.items()]
    chosen, record = choose_trial(candidates, space.start, "val_miou", "max",
                                  lambda candidate: trained[candidate.checkpoint][1])
    win_rate = bootstrap_win_rate(trained["sampled"][1], trained["start"][1])
    print(f"the sampled trial scores higher on {win_rate:.1%} of validation resamples; continued: "
          f"{chosen.trial_id} ({record})")


if __name__ == "__main__":
    main()
