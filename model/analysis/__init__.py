"""Analysis of a bundle: evaluation and baselines, the genre probe, search evaluation through the
store, 2-D maps and plots, vector files. No torch."""
