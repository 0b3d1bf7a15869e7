"""linecube bpt (not written yet)."""

HELP = "bpt (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube bpt is not written yet")
