"""face-automl: architecture search (DDPNAS, DARTS, random WS) for facial AU detection and FER."""

__version__ = "0.1.0"
