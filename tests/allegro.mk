## tests/allegro.mk - included by tests/local.mk.
