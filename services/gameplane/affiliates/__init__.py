"""The affiliates service: links, clicks, attribution, deals, statements and postbacks."""
