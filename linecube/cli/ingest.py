"""linecube ingest (not written yet)."""

HELP = "ingest (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube ingest is not written yet")
