"""Train a ConvLSTM autoencoder (or the 2-D baseline) on a store.

Examples:
  linecube train --store STORE --config demo --out runs/demo
  linecube train --store STORE --config paper -o trainer.max_epochs=20 -o data.workers=2 --out RUN
  linecube train --store STORE --out RUN --resume            (continue after a kill)
  linecube train --store STORE --out RUN --resume -o trainer.max_epochs=80   (train longer)
  torchrun --nproc_per_node 4 -m linecube train --store STORE --config default \\
      -o trainer.strategy=ddp -o trainer.devices=4 --out RUN  (one node, 4 GPUs)

--config takes a preset (default, paper, reference, demo) or a TOML/YAML file; -o overrides any
key. The run directory receives checkpoints, logs (CSV, TensorBoard) and model.safetensors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from linecube.cli.common import add_override_argument

HELP = "train a model on a store (presets: default, paper, reference, demo)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, help="store directory (from linecube ingest)")
    parser.add_argument("--config", default=None,
                        help="preset name or config file (default: 'default'; with --resume: "
                             "the run's saved config)")
    add_override_argument(parser, "override a config key, e.g. -o optim.lr=3e-4 (repeatable)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")


def run(args: argparse.Namespace) -> int:
    from linecube.config import parse_overrides
    from linecube.training.config import load_train_config
    from linecube.training.train import train

    overrides = parse_overrides(args.override)
    if args.resume and args.config is None:
        saved = Path(args.out) / "config.json"
        config = load_train_config(saved, overrides) if overrides else None
    else:
        config = load_train_config(args.config or "default", overrides)
    result = train(args.store, config, args.out, resume=args.resume)
    print(f"model: {result.model_path} (best val_loss {result.best_val_loss:.6g}, "
          f"{result.epochs} epochs)")
    return 0
