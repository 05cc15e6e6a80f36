"""The run's process: signals, checkpoint files, worker processes, fault points, how it exits.

Nothing here knows MLflow or Hydra: these are the concerns of a process that trains, whoever
records it (``pipeline.tracking``) and whoever configured it (``pipeline.__main__``).
"""
