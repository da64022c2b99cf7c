"""The pipeline's stages, one typer command per module: ``python -m stages.<name>``."""
