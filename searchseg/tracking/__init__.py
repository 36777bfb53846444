"""What a search records: the experiment's tables, trial statuses, provenance, the Pareto front, trackers."""
