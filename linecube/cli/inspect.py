"""linecube inspect (not written yet)."""

HELP = "inspect (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube inspect is not written yet")
