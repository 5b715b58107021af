"""On top of the runner: the scikit-learn estimator, predicting new data, reports and plots, the photo organiser, sweeps."""
