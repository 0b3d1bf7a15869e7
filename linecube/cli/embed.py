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
    parser.add_argument("--model", required=True, help="model file (RUN_DIR/model.safetensors)")
    parser.add_argument("--store", required=True, help="the store to embed")
    parser.add_argument("--out", required=True, help="analysis directory")
    parser.add_argument("--config", help="TOML/YAML file with embed settings")
    parser.add_argument("--batch-size", type=int, help="galaxies per forward pass (32)")
    parser.add_argument("--device", help="auto (CUDA when present), cpu, cuda, cuda:N")
    parser.add_argument(
        "--save-recon", action="store_true", default=None, help="also write recon.zarr"
    )
    parser.add_argument("--error", choices=["l1", "mse"], help="per-spaxel error (l1)")
    parser.add_argument(
        "--calibration", help="calibration.json to use instead of fitting one on the run's "
        "validation galaxies"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args):
    from linecube.analysis.calibrate import read_calibration
    from linecube.analysis.cli_support import make_config
    from linecube.analysis.embed import EmbedConfig, embed, resolve_device
    from linecube.devices import check_device
    from linecube.store import Store
    from linecube.training.modelfile import load_model

    cfg = make_config(
        EmbedConfig,
        args.config,
        {
            "batch_size": args.batch_size,
            "device": args.device,
            "save_recon": args.save_recon,
            "error": args.error,
        },
    )
    check_device(cfg.device)
    calibration = None
    if args.calibration:
        calibration = read_calibration(args.calibration)
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
