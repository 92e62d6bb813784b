"""The Flask app: HTTP API, validation, batch parsing and the WebSocket hub."""
