"""Loopback servers that speak real services' wire protocols (YouTube, ...), for tests."""
