"""Search spaces (files and dicts, validated; define-by-run sampling) and the flat trial config they yield."""
