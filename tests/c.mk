## tests/c.mk - included by tests/local.mk.
