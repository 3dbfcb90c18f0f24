"""Environments: one running copy of the service with its releases, data, backups and logs.

``releases`` and ``backups`` are the on-disk mechanisms (pure, synchronous); the
EnvironmentActor that drives them lives in ``environment``.
"""
