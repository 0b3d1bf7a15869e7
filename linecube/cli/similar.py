"""linecube similar (not written yet)."""

HELP = "similar (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube similar is not written yet")
