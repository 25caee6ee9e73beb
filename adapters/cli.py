"""``cortexsim train``: train a topographic method from the command line.

The main ``cortexsim`` command calls :func:`add_parser` with its subparsers; the
same parser runs stand-alone (``python -m cortexsim.adapters.cli train ...``),
which is also how ``torchrun`` starts it for DDP::

    torchrun --nproc_per_node=8 -m cortexsim.adapters.cli train --method tdann --data /data/imagenet ...
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: argparse dest -> Trainer keyword
_ARG_TO_PARAM = {
    "method": "method", "arch": "arch", "layout": "layout", "lam": "lam", "data": "data", "epochs": "epochs",
    "steps": "steps", "batch_size": "batch_size", "lr": "lr", "optimizer": "optimizer", "nesterov": "nesterov",
    "task": "task",
    "device": "device", "amp": "amp", "compile": "compile", "seed": "seed", "checkpoint_every": "checkpoint_every",
    "keep_last": "keep_last", "log_every": "log_every", "num_workers": "num_workers", "image_size": "image_size",
    "layers": "layers", "swapopt": "swapopt", "swapopt_images": "swapopt_images",
    "swapopt_reference": "swapopt_reference",
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p = subparsers.add_parser(
        "train", help="train a topographic method (tdann, channel, ws, as, reset, topoloss, baseline)",
        description="Train a registered topographic method and write RUN_DIR/{config.json, log.jsonl, "
                    "metrics.csv, curves.png, checkpoints/, model.pt}. Nothing is downloaded. Under torchrun "
                    "the same command trains with DDP.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    # Defaults are None so that --resume only overrides what is given explicitly; the Trainer fills the rest.
    p.add_argument("--method", help="registered method (default baseline)")
    p.add_argument("--arch", help="architecture, e.g. resnet18 (default: the method's)")
    p.add_argument("--data", help="digits | lfw | folder with CIFAR-10/100 (torchvision layout or binary) or "
                                  "ImageNet-style ROOT[/train]/<class>/<image> (default digits)")
    p.add_argument("--epochs", type=int, help="epochs (at least one of --epochs / --steps)")
    p.add_argument("--steps", type=int, help="maximum optimizer steps")
    p.add_argument("--batch-size", dest="batch_size", type=int, help="images per step and process (default 128)")
    p.add_argument("--lr", type=float, help="learning rate (default: the method's)")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), help="default: the method's")
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                   help="Nesterov momentum for SGD (default: the method's; TDANN's supervised recipe uses it)")
    p.add_argument("--lam", type=float, help="spatial-loss weight λ ≥ 0 (default: the method's)")
    p.add_argument("--layout", help="unit/channel layout (default: the method's)")
    p.add_argument("--layers", nargs="+", help="layers to regularise (default: the method's)")
    p.add_argument("--task", choices=("supervised", "simclr"), help="default: the method's, else supervised")
    p.add_argument("--image-size", dest="image_size", type=int, help="input side in px (default 32 / 224)")
    p.add_argument("--swapopt", type=int, help="tdann: swap-optimisation rounds of unit positions before training "
                   "(TDANN's position pre-optimisation; default 0 = off)")
    p.add_argument("--swapopt-images", dest="swapopt_images", type=int, help="training images driving the swaps (512)")
    p.add_argument("--swapopt-reference", dest="swapopt_reference",
                   help="run folder of a trained network whose responses drive the swaps (default: the initial net)")
    p.add_argument("--out", required=True, help="run folder (RUN_DIR)")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    p.add_argument("--checkpoint-every", dest="checkpoint_every", type=int, help="checkpoint every N steps")
    p.add_argument("--keep-last", dest="keep_last", type=int, help="checkpoints kept (default 3)")
    p.add_argument("--log-every", dest="log_every", type=int, help="log every N steps (default 10)")
    p.add_argument("--num-workers", dest="num_workers", type=int, help="DataLoader workers (default 0)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast on CUDA (default on)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)
    return p


def trainer_from_args(args: argparse.Namespace):
    """The :class:`~cortexsim.adapters.trainer.Trainer` the parsed arguments describe."""
    from .trainer import Trainer

    given = {param: getattr(args, dest) for dest, param in _ARG_TO_PARAM.items() if getattr(args, dest, None) is not None}
    if args.resume and (Path(args.out) / "config.json").is_file():
        return Trainer.resume(args.out, progress=args.progress, **given)
    return Trainer(out=args.out, resume=args.resume, progress=args.progress, **given)


def run(args: argparse.Namespace) -> int:
    """Train; print where the results are. Returns 0, or 2 with a message on a bad configuration."""
    from .base import AdapterError  # here, not at the top: .base imports torch, `cortexsim --help` must not

    try:
        trainer = trainer_from_args(args)
        history = trainer.fit()
    except AdapterError as exc:
        print(f"cortexsim train: error: {exc}", file=sys.stderr)
        return 2
    if trainer.rank_ == 0:
        last = history[-1] if history else {}
        print(f"trained {trainer.method}/{trainer.arch_} for {trainer.step_} steps "
              f"(task loss {last.get('task_loss', float('nan')):.4g}, spatial loss "
              f"{last.get('spatial_loss', float('nan')):.4g}); model and logs in {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m cortexsim.adapters.cli train ...``."""
    parser = argparse.ArgumentParser(prog="cortexsim")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
