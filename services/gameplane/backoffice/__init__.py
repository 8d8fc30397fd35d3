"""The back office: the staff site, server-rendered, on the services' back-office routes."""
