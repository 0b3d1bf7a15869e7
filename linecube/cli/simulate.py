"""linecube simulate (not written yet)."""

HELP = "simulate (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube simulate is not written yet")
