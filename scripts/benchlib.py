"""What the benchmark scripts share (imported from the scripts' own directory)."""

import statistics


class BenchmarkError(RuntimeError):
    """The benchmark cannot measure what it should; the message says why."""


def stats(samples):
    """Median, min, max and the samples of a list of seconds, rounded to 0.1 ms."""
    return {
        "median_s": round(statistics.median(samples), 4),
        "min_s": round(min(samples), 4),
        "max_s": round(max(samples), 4),
        "samples_s": [round(sample, 4) for sample in samples],
    }
