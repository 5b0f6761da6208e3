## tests/robust.mk - included by tests/local.mk.
