"""The one exception type for problems the user can fix (bad data, bad config)."""


class DecJaxError(ValueError):
  """Bad input: a missing file, an unknown name, an impossible setting.

  Raised before any compute starts, with a message naming the problem and the
  expected form. Entry points print it without a traceback and exit non-zero.
  """


class TrainingDiverged(DecJaxError):
  """A loss became NaN or inf: the message names the stage and the step."""
