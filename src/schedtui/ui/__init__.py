"""The live terminal UI (Textual). Talks to a run only through a run source (`ui.source`).

Must never import torch: `schedtui replay` and the first screen of a live run start
without it.
"""
