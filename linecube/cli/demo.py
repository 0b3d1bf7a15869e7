"""linecube demo (not written yet)."""

HELP = "demo (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube demo is not written yet")
