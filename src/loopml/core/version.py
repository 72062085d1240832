"""The package version, importable by every stage."""

VERSION = "0.1.0"
