"""Management console: a browser console over the same services the APIs use."""
