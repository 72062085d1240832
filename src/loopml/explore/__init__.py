"""explore stage."""
