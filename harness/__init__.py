"""harness: runs engines x scenarios, builds the matrix, benchmarks and the CLI."""
