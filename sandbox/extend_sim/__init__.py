"""A local stand-in for the Extend API (see ``sandbox.extend_simulator`` for the entry point)."""

from sandbox.extend_sim.faults import Faults
from sandbox.extend_sim.server import ExtendSimulator

__all__ = ["ExtendSimulator", "Faults"]
