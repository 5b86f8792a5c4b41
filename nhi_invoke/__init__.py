"""nhi-invoke: one short-lived cloud identity per pipeline step."""

__version__ = "0.1.0"
