"""gridgov's benchmarks, run on the `city` fixture by `make bench`."""
