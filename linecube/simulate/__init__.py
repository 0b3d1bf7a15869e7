"""A simulated MaNGA survey in the real DAP formats, with known truth.

``simulate_survey`` writes DR17 (or DR15) MAPS files, a DAPall catalogue, a truth table,
per-spaxel truth maps and an AGN catalogue; ``simulate_galaxy`` returns one observation's
arrays in memory. See ``docs/simulate.md`` for the physics, the sources of every number and
the files written.
"""

from linecube.simulate.config import CLASSES, SimulationConfig
from linecube.simulate.galaxy import SimulatedObservation, simulate_galaxy
from linecube.simulate.survey import SurveySummary, read_truth_maps, simulate_survey

__all__ = ["CLASSES", "SimulatedObservation", "SimulationConfig", "SurveySummary",
           "read_truth_maps", "simulate_galaxy", "simulate_survey"]
