"""Evaluation of policies: kraby eval and the acceptance gate."""
