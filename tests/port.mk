## tests/port.mk - included by tests/local.mk.
