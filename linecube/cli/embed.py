"""Embed every galaxy of a store with a trained model.

Writes into ANALYSIS_DIR: latents.zarr (mu, and logvar for a VAE), spaxel_error.zarr,
anomaly_maps.zarr, calibration.json, recon.zarr (with --save-recon) and the catalogue
(Parquet + FITS) with each galaxy's split in the model's run and its residual scores:
score_resid_peak, score_resid_mean, score_line_<line> (calibrated: residuals in units of their
expected error) and score_recon, score_recon_<line> (the uncalibrated mean error). The residual
calibration is fitted on the run's validation galaxies; for a store without them, pass
--calibration with the calibration.json of an analysis of the training store. An interrupted
run resumes where it stopped.

Example:
  linecube embed --model runs/demo/model.safetensors --store store --out analysis
"""

from __future__ import annotations

HELP = "latent vectors and reconstruction errors of every galaxy"


def add_arguments(parser):
    from linecube.analysis.embed import EmbedConfig
    from linecube.cli.common import add_config_arguments

    parser.add_argument("--model", required=True, help="model file (RUN_DIR/model.safetensors)")
    parser.add_argument("--store", required=True, help="the store to embed")
    parser.add_argument("--out", required=True, help="analysis directory")
    parser.add_argument(
        "--calibration", help="calibration.json to use instead of fitting one on the run's "
        "validation galaxies"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_config_arguments(parser, EmbedConfig, example="batch_size=64")


def run(args):
    from linecube.analysis.calibrate import read_calibration
    from linecube.analysis.embed import EmbedConfig, embed, resolve_device
    from linecube.cli.common import config_from_args
    from linecube.devices import check_device
    from linecube.store import Store
    from linecube.training.modelfile import load_model

    cfg = config_from_args(EmbedConfig, args)
    check_device(cfg.device)  # before the model and the store are read
    calibration = read_calibration(args.calibration) if args.calibration else None
    loaded = load_model(args.model)
    store = Store.open(args.store)
    cat = embed(
        loaded.model,
        store,
        args.out,
        cfg,
        model_path=args.model,
        model_store_meta=loaded.store_meta,
        progress=not args.no_progress,
        calibration=calibration,
    )
    print(
        f"embedded {len(cat)} galaxies on {resolve_device(cfg.device)} into {args.out} "
        f"(latents.zarr, spaxel_error.zarr, anomaly_maps.zarr, calibration.json"
        f"{', recon.zarr' if cfg.save_recon else ''}, "
        "catalogue.parquet/.fits); next: linecube score " + str(args.out)
    )
    return 0
