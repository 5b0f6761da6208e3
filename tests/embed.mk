## tests/embed.mk - included by tests/local.mk.
