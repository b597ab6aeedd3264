"""Day-2 operations: one module per verb, each a backend-neutral service returning a report."""
