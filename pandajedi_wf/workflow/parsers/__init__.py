"""Readers of the three pchain description languages into ``RawWorkflow``."""
