"""A local stand-in for the Extend API (see ``sandbox.extend_simulator`` for the entry point, README.md
here for its settings, faults and ``/_sim`` API)."""

from sandbox.extend_sim.faults import Faults
from sandbox.extend_sim.server import ExtendSimulator

__all__ = ["ExtendSimulator", "Faults"]
