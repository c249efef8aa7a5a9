"""schedtui: a terminal training monitor for PyTorch that watches and steers a run.

`Experiment` and `Knob` are what a factory for `schedtui run module:function`
returns; `monitor(model, optimizer, ...)` puts a loop of your own under schedtui
(see README "Use it with your own model"). Importing this package imports
neither torch nor textual.
"""

__version__ = "0.1.0"

from schedtui.experiment import Experiment  # noqa: E402
from schedtui.knob import Knob  # noqa: E402

__all__ = ["Experiment", "Knob", "monitor", "__version__"]


def monitor(model, optimizer, **kwargs):
    """Put your own training loop under schedtui; see `schedtui.own_loop.Monitor` (imports torch when called)."""
    from schedtui.own_loop import Monitor

    return Monitor(model, optimizer, **kwargs)
