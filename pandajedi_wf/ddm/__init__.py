"""DDM access for the carousel: the StagingDDM interface and its Rucio implementation."""
