"""anchor: a 24-hour digital-human livestream host.

Schedule and questions in, one H.264 + AAC stream out, on one clock.
"""

__version__ = "0.1.0"
