"""Alerts that reach people: routing, grouping, silences and delivery to receivers."""
