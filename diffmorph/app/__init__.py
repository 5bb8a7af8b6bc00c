"""The application layer: the one path from files to outputs, used by every command,
the public API (:mod:`diffmorph`), the notebook and the benchmarks."""
