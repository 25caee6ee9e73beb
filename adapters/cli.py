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

def json_object(text: str) -> dict[str, Any]:
    """argparse type of ``--method-kwargs``: a JSON object (``'{"n": 4}'``)."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg} at character {exc.pos}): {text!r}; "
                                         f"write e.g. '{{\"n\": 4}}' (quote the whole object in the shell)") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object of option -> value, e.g. '{{\"n\": 4}}'; got {text!r}")
    return value


class _MethodsHelp(argparse.Action):
    """``train --help``: the options plus every method with its default and supported architectures.

    The registry imports torch, so it is read only when this help is asked for, never when
    ``cortexsim --help`` builds the parsers.
    """

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parser.epilog = methods_table()
        parser.print_help()
        parser.exit()


def methods_table() -> str:
    """One line per registered method: name, default architecture, all architectures, paper."""
    from .base import get_method, methods

    lines = ["methods (--method), their default --arch and the architectures each supports:"]
    for name in methods():
        spec = get_method(name)
        default = spec.defaults.get("arch", spec.archs[0] if spec.archs else "resnet18")
        lines.append(f"  {name:<9} default {default:<12} supports {', '.join(spec.archs)}")
    return "\n".join(lines)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    from .train_config import add_arguments

    p = subparsers.add_parser(
        "train", help="train a topographic method (tdann, channel, ws, as, reset, topoloss, baseline)",
        description="Train a registered topographic method and write RUN_DIR/{config.json, log.jsonl, "
                    "metrics.csv, curves.png, checkpoints/, model.pt}. Nothing is downloaded. Under torchrun "
                    "the same command trains with DDP. Options left out take the method's defaults (the "
                    "paper's setup), or with --resume the run's.",
        formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False)
    p.add_argument("-h", "--help", action=_MethodsHelp,
                   help="show this help, with the methods and their architectures, and exit")
    # One flag per TrainConfig option, all defaulting to None: --resume overrides only what is given.
    add_arguments(p)
    p.add_argument("--out", required=True, help="run folder (RUN_DIR)")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (it is shown only on a terminal anyway)")
    p.set_defaults(func=run)
    return p


def trainer_from_args(args: argparse.Namespace):
    """The :class:`~cortexsim.adapters.trainer.Trainer` the parsed arguments describe."""
    from .train_config import given_options
    from .trainer import Trainer

    given = given_options(args)
    if args.resume and (Path(args.out) / "config.json").is_file():
        return Trainer.resume(args.out, progress=args.progress, **given)
    return Trainer(out=args.out, resume=args.resume, progress=args.progress, **given)


def run(args: argparse.Namespace) -> int:
    """Train; print where the results are. Bad configurations raise AdapterError (exit 2 via the CLI)."""
    from cortexsim.cliutil import check_output

    check_output(args.out, "dir", "--out (the run folder)")
    if args.resume and not (Path(args.out) / "config.json").is_file():
        from .checkpoint import list_checkpoints

        if not list_checkpoints(args.out):
            from .base import AdapterError

            raise AdapterError(f"nothing to resume in {str(args.out)!r}: it holds no config.json and no "
                               f"checkpoint. Drop --resume to start a new run there.")
    trainer = trainer_from_args(args)
    history = trainer.fit()
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
    from cortexsim.cliutil import run_command

    return run_command(args, "cortexsim train")


if __name__ == "__main__":
    sys.exit(main())
