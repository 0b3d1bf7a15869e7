"""Run the whole pipeline on the built-in simulated survey (CPU, a few minutes).

simulate -> ingest -> train (demo preset) -> embed -> score -> umap -> bpt -> evaluate ->
report + explorer. Rerunning with the same --out resumes or skips finished steps.
"""

HELP = "the whole pipeline on a simulated survey, in a few minutes on a CPU"


def add_arguments(parser):
    parser.add_argument("--out", default="linecube-demo",
                        help="output directory (default: %(default)s)")
    parser.add_argument("--n", type=int, default=300,
                        help="simulated galaxies (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the survey and the training run (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--top", type=int, default=10,
                        help="anomalies to print (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the demo preset's)")


def run(args):
    from linecube.demo import run_demo

    run_demo(args.out, n=args.n, seed=args.seed, workers=args.workers, top=args.top,
             epochs=args.epochs)
    return 0
