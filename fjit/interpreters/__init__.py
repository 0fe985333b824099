"""Interpreters of Programs: eager evaluation, staging (tracing to a Program), and later the
transformations (autodiff, batching, ...).  Each is one Trace/Tracer pair plus its rules."""
