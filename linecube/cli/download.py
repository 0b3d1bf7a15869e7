"""linecube download (not written yet)."""

HELP = "download (not written yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("linecube download is not written yet")
