"""`ilbot bench ...`: benchmarks that print their figures (never timed unit tests).

Each benchmark lives in its own module here and registers itself in `BENCHMARKS`."""
