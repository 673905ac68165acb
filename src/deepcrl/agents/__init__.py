"""Agents: each a static description with pure init / act / update over a state pytree."""

from deepcrl.agents.crl import CRL, CRLConfig, CRLState

__all__ = ["CRL", "CRLConfig", "CRLState"]
