"""One trial of the mass-flexion item: buffered observations, quality gates, features."""
