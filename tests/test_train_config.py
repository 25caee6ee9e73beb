"""TrainConfig: one table for the Trainer's defaults, the saved config, the resume checks and the CLI flags."""
from __future__ import annotations

import argparse

import pytest

from cortexsim.adapters import cli
from cortexsim.adapters.train_config import TrainConfig, given_options
from cortexsim.errors import AdapterError

# config.json["trainer"] as written before swapopt / nesterov / method_kwargs existed.
OLD_SAVED = {"method": "baseline", "arch": "tiny", "layout": None, "lam": None, "data": "lfw", "epochs": None,
             "steps": 4, "batch_size": 8, "lr": None, "optimizer": None, "weight_decay": None, "momentum": None,
             "scheduler": None, "warmup_fraction": None, "task": None, "temperature": 0.1, "device": "cpu",
             "amp": True, "compile": False, "seed": 3, "checkpoint_every": 2, "keep_last": 3, "log_every": 2,
             "num_workers": 0, "image_size": None, "layers": None, "deterministic": False,
             "find_unused_parameters": None}


def test_an_old_saved_config_reads_with_the_defaults_of_the_newer_options():
    cfg = TrainConfig.from_saved(OLD_SAVED, steps=6)
    assert (cfg.steps, cfg.seed, cfg.swapopt, cfg.swapopt_images, cfg.swapopt_reference, cfg.nesterov,
            cfg.method_kwargs) == (6, 3, 0, 512, None, None, None)
    assert cfg.changed_on_resume(OLD_SAVED) == []
    assert TrainConfig.from_saved(OLD_SAVED, seed=4).changed_on_resume(OLD_SAVED) == ["seed"]
    assert TrainConfig.from_saved(OLD_SAVED, method_kwargs={}).changed_on_resume(OLD_SAVED) == []  # {} == None
    with pytest.raises(AdapterError, match=r"unknown trainer settings \['bogus'\]"):
        TrainConfig.from_saved({**OLD_SAVED, "bogus": 1})


def test_an_old_saved_config_keeps_the_augmentation_it_was_trained_with():
    # Runs saved before `augment` existed trained with crop + flip (SimCLR: s 0.5, no blur, crops from 0.2);
    # read as "reference" a WS run would resume with no augmentation and a TDANN SimCLR run with s 1.0 + blur.
    cfg = TrainConfig.from_saved(OLD_SAVED)
    assert (cfg.augment, cfg.simclr_strength, cfg.simclr_blur, cfg.simclr_min_scale) == ("standard", 0.5, 0.0, 0.2)
    assert cfg.changed_on_resume(OLD_SAVED) == []
    assert TrainConfig.from_saved(OLD_SAVED, augment="none").changed_on_resume(OLD_SAVED) == ["augment"]
    assert TrainConfig().augment is None  # a new run still takes the method's reference


def test_the_resume_rule_and_the_saved_keys_come_from_the_fields():
    # The five hand-kept lists of before, now one table: _RESUME_FIXED was the first 14.
    assert set(TrainConfig.resume_fixed()) == {
        "method", "arch", "layout", "lam", "data", "batch_size", "task", "seed", "layers", "image_size",
        "swapopt", "swapopt_images", "swapopt_reference", "method_kwargs",
        "augment", "simclr_strength", "simclr_blur", "simclr_min_scale"}  # added since: the augmentation
    assert list(TrainConfig().to_dict()) == list(TrainConfig.names())
    assert TrainConfig.method_options() == ("swapopt", "swapopt_images", "swapopt_reference")


def test_every_option_with_a_flag_is_on_the_command_line_and_unset_flags_are_none(tmp_path):
    parser = argparse.ArgumentParser(prog="cortexsim")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", "--out", str(tmp_path)])
    assert given_options(args) == {}
    argv = ["train", "--out", str(tmp_path), "--weight-decay", "0.002", "--warmup-fraction", "0.25",
            "--scheduler", "constant", "--temperature", "0.5", "--deterministic", "--no-find-unused-parameters",
            "--momentum", "0.8", "--layers", "a", "b", "--method-kwargs", '{"n": 2}']
    assert given_options(parser.parse_args(argv)) == {
        "weight_decay": 0.002, "warmup_fraction": 0.25, "scheduler": "constant", "temperature": 0.5,
        "deterministic": True, "find_unused_parameters": False, "momentum": 0.8, "layers": ["a", "b"],
        "method_kwargs": {"n": 2}}


@pytest.mark.parametrize("kwargs, match", [
    (dict(keep_last=0), "keep_last must be a positive integer; got 0"),
    (dict(num_workers=-1), "num_workers must be an integer ≥ 0; got -1"),
    (dict(amp="yes"), "amp must be True or False; got 'yes'"),
    (dict(warmup_fraction=1.0), r"warmup_fraction must be in \[0, 1\); got 1.0"),
    (dict(scheduler="step"), "scheduler must be one of"),
])
def test_validate_names_the_option_and_the_rule(kwargs, match):
    with pytest.raises(AdapterError, match=match):
        TrainConfig(**kwargs).validate()
    TrainConfig().validate()  # the defaults are valid


def test_the_public_trainer_names_import_from_the_package():
    from cortexsim import adapters
    from cortexsim.adapters import Trainer, TrainConfig as TC, build_net, load_trained, read_log
    from cortexsim.adapters import run_folder, trainer

    assert Trainer is trainer.Trainer and TC is TrainConfig and adapters.Trainer is Trainer
    assert (load_trained, read_log, build_net) == (run_folder.load_trained, run_folder.read_log, run_folder.build_net)
    assert trainer.load_trained is load_trained  # the old import path still works
