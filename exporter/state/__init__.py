"""State that survives restarts: an embedded SQLite file under `--storage.path` (see docs/state.md).

`saved` holds what a poller and its collectors hand over and get back, `resume` turns a
poller's state into that and back, `schema` the file's layout and migrations, `files` the
lock and the handling of a bad file, `store` the reads and the one write per poll,
`metrics` the store's self-metrics.
"""
