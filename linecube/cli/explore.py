"""linecube explore (not written yet)."""

HELP = "explore (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube explore is not written yet")
