"""The control channel of a running run: a Unix socket only its owner can use, served from the training process.

- `protocol`: the versioned line protocol (hello, send, status, events from seq N).
- `paths`: where sockets live (a private per-user directory) and `RUN_DIR/control.json`.
- `server`: `ControlServer`, the light thread that serves it beside the engine.
- `sockets`: peer credentials (SO_PEERCRED), listening on a path, a client's buffers.
- `client`: a blocking connection (ctl, ps, attach) with the trust checks.
- `runs`: finding runs (running or not), their state, and cleaning up stale sockets.
- `background`: `--detach` (a run started in the background) and continuing headless after a hang-up.
- `own_screen`: the live screen of a run in this process, drawn by a child process attached to it.
- `loop_screen`: that screen for a loop that keeps this process's main thread (your own, Lightning, HF).

Nothing here imports torch, textual or rich: `schedtui ctl`, `ps` and `attach` start at once.
"""
