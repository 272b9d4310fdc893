"""Policies and their immutable versions, the policy writers' pages and the demo policies."""
