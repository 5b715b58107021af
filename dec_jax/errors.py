"""The one exception type for problems the user can fix (bad data, bad config)."""


class DecJaxError(ValueError):
  """Bad input: a missing file, an unknown name, an impossible setting.

  Raised before any compute starts (no file written yet), with a message
  naming the problem and the expected form. Entry points print it without a
  traceback and exit with code 2.
  """


class TrainingDiverged(DecJaxError):
  """A loss became NaN or inf during training: names the stage and the step.

  Unlike other DecJaxErrors it is raised mid-run: the workdir then holds the
  config, the metrics log so far and any finished checkpoint, never results.
  """
