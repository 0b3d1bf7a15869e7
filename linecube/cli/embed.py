"""linecube embed (not written yet)."""

HELP = "embed (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube embed is not written yet")
