"""Evaluation on held-out data (no Qt).

``predictions`` (a run's probabilities on a split, cached in the run folder), ``metrics``
(array-level ROC / PR / bootstrap / calibration / thresholds), ``evaluation`` (every number of
one set of predictions), ``ensemble`` (mean, vote, AUC-weighted), ``suite``
(``evaluate_runs``: what the CLI and GUI call) and ``report`` (CSV and PNG files). The
modules are imported one by one: ``options`` stays light for the command line.
"""
