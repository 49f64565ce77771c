"""ilbot: an imitation-learning agent for tick-based desktop games.

Record → dataset → train → evaluate → play. See ../DESIGN (shared) and README.md.
"""

__version__ = "0.1.0"
