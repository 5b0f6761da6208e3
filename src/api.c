/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * api.c - the public C interface declared in ecl-sock.h (the only symbols
 * libecl-sock exports).
 */
#include "eclsock.h"
#include "ecl-sock.h"

__attribute__((visibility("default"))) const char *
ecl_sock_version(void)
{
  return ECL_SOCK_VERSION;
}
