"""linecube train (not written yet)."""

HELP = "train (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube train is not written yet")
