"""Training defaults that the CLI and nodes name without importing the training stack."""

DEFAULT_CONFIG = "train_ppo.yaml"
"""The training config used when none is given (looked up in the share's config/)."""
