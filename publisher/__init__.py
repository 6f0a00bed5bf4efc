"""publisher: release one master video to every channel an organisation broadcasts through."""

__version__ = "0.1.0"
