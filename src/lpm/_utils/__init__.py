"""Private helpers used by every layer: atomic writes, small tables, caches, threads, options."""
