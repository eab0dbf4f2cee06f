"""mindsearch inside other agent frameworks: a lagent action and an MCP server."""
