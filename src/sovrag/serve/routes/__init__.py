"""The HTTP routes: each parses a request, calls the services through the ServerContext, shapes a reply."""
