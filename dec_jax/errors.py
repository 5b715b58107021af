"""The one exception type for problems the user can fix (bad data, bad config)."""


class DecJaxError(ValueError):
  """Bad input: a missing file, an unknown name, an impossible setting.

  Config and data problems are raised before any compute starts (no file
  written yet); a few found only by the work itself (a checkpoint that does
  not fit, k-means or a mixture that cannot fit the embedding) are raised
  mid-run, before any results file. The message names the problem and the
  expected form. Entry points print it without a traceback and exit with
  code 2.
  """


def require(condition: bool, message: str) -> None:
  """Raises DecJaxError(message) unless `condition` holds."""
  if not condition:
    raise DecJaxError(message)


class TrainingDiverged(DecJaxError):
  """A loss became NaN or inf during training: names the stage and the step.

  Unlike other DecJaxErrors it is raised mid-run: the workdir then holds the
  config, the metrics log so far and any finished checkpoint, never results.
  """
