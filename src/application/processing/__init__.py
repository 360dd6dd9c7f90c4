"""The worker's helpers for ProcessBatch: the fair embedding schedule, the progress
book, and the observer that metrics adapters implement."""
