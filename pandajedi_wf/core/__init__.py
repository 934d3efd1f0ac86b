"""Pieces shared by the workflow and the carousel code paths (no JEDI, no DB imports)."""
