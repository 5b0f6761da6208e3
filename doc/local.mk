## doc/local.mk - included by Makefile.am.
