"""From a config to a workdir: members (seeds x grid), data loading and checks, the stack and its shared stages, checkpoints, logs, results."""
