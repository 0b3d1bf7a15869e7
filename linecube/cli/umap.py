"""linecube umap (not written yet)."""

HELP = "umap (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube umap is not written yet")
