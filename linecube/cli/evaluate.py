"""linecube evaluate (not written yet)."""

HELP = "evaluate (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube evaluate is not written yet")
