"""The xpann command line: Click commands over the public xpann API."""
