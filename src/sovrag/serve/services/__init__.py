"""The server's services: what the routes call. They know nothing of FastAPI or HTTP requests."""
