"""fastnet: a fast, trustworthy CPU trainer for fully-connected networks."""

__version__ = "0.1.0"
