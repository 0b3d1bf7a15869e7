"""linecube report (not written yet)."""

HELP = "report (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube report is not written yet")
