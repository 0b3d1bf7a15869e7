"""linecube score (not written yet)."""

HELP = "score (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube score is not written yet")
