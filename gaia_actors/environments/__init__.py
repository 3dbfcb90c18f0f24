"""Environments: one running copy of the service with its releases, data, backups and logs.

The on-disk mechanisms are pure and synchronous: ``releases`` (and ``builds``, which makes
them), ``backups`` (and ``restores``, which put one in place), ``data``. The EnvironmentActor
that drives them lives in ``environment``: its state in ``state``, its process and health
verdicts and data jobs in ``core`` (with ``service``), its operations in ``deploys``,
``dataops`` and ``dataloss``, what it tells itself in ``notices``. The ``environments``
supervisor and its recovery ladder are in ``tree``.
"""
