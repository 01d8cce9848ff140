"""The HTTP and WebSocket API (FastAPI) and the security room's live page."""
