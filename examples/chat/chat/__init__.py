"""The chat app: rooms, persisted messages, WebSocket consumers and the page."""
