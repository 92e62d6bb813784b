"""The scoring engine, rule sets, MongoDB persistence and the Huey tasks."""
