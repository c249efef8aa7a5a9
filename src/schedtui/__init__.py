"""schedtui: a terminal training monitor for PyTorch that watches and steers a run.

`Experiment` and `Knob` are what a factory for `schedtui run module:function`
returns (see README "Use it with your own model"). Importing this package imports
neither torch nor textual.
"""

__version__ = "0.1.0"

from schedtui.experiment import Experiment  # noqa: E402
from schedtui.knob import Knob  # noqa: E402

__all__ = ["Experiment", "Knob", "__version__"]
