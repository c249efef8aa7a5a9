"""The live terminal UI (Textual). Talks to a run only through a run source (`ui.source`).

Must never import torch: `schedtui replay` and the first screen of a live run start
without it.
"""

# Frames a second while a run trains (`--refresh-hz`). Each frame takes the screen's thread a few
# milliseconds (its own work, then Textual's painting: about 8-10 ms at 120x40 during the moons run, a
# thousand steps a second): at 5 Hz the screen still looks live and takes ~5% of a core. `schedtui
# PRESET` draws it in a process of its own (`control.own_screen`), so those milliseconds never hold the
# training's GIL; a screen in the training's process (`schedtui.monitor(...).run`) shares it
# (benchmarks/overhead.py reports each frame's time and what the screen costs the training). Here, not
# in ui.app, so that the CLI can show it in --help without importing Textual.
LIVE_REFRESH_HZ = 5.0
