"""Pictures and pages of an analysis directory.

* :mod:`linecube.viz.results`: read an analysis directory (and an optional label table).
* :mod:`linecube.viz.figures`: Matplotlib figures, saved as PNG and PDF.
* :mod:`linecube.viz.report`: ``build_report``, the static HTML report.
* :mod:`linecube.viz.explore`: ``build_explorer`` and ``serve``, the interactive page.
"""
