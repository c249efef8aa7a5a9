"""schedtui: a terminal training monitor for PyTorch that watches and steers a run.

Importing this package imports neither torch nor textual.
"""

__version__ = "0.1.0"
