"""loop stage."""
