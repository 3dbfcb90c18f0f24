"""The store: the ``Store`` actor, the single writer (``actor``); every table as a peewee model
(``models``); and the database file, opened, migrated and checked (``database``)."""
