"""The browser and HTTP API over stores and models (`galaxy-hpc serve`): an ASGI app
that reads what the batch jobs write; nothing in the batch jobs depends on it."""
