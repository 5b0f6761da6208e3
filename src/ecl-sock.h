/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * ecl-sock.h - the public C interface of ecl-sock, for programs that embed
 * ECL.  Compile and link with: cc host.c $(pkg-config --cflags --libs ecl-sock)
 */
#ifndef ECL_SOCK_H
#define ECL_SOCK_H

#include <ecl/ecl.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ECL_SOCK_VERSION "0.1.0"

/* The version of the library linked in, e.g. "0.1.0".  Never fails. */
const char *ecl_sock_version(void);

#ifdef __cplusplus
}
#endif

#endif /* ECL_SOCK_H */
