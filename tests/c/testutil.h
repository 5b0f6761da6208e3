/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * testutil.h - shared helpers of the Check suites in tests/c/.
 *
 * Loopback fixtures made with plain system calls (so a suite about os.c
 * does not test os.c with itself): a TCP listener on 127.0.0.1 or ::1 with
 * a kernel-chosen port, a client connected to it, a socketpair.  And the
 * ECL side: boot once in main (forked test children inherit the booted
 * image), optionally load the built sock.fas for the real condition
 * classes, then register this program's own copy of the primitives.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include "internal.h"
#include <check.h>

/* Seconds for tcase_set_timeout on networking test cases. */
#define TU_NET_TIMEOUT 20

/* -- Descriptors ---------------------------------------------------------- */

/* A listening TCP socket on the loopback address of FAMILY (AF_INET or
   AF_INET6), port chosen by the kernel and stored in *PORT; -1 when the
   family is not available here. */
int tu_listener(int family, int *port);
/* A blocking TCP client connected to the loopback address of FAMILY at PORT. */
int tu_connect(int family, int port);
/* A connected AF_UNIX stream pair. */
void tu_socketpair(int sv[2]);
/* A connected TCP pair over 127.0.0.1 (client in sv[0], server side in sv[1]). */
void tu_tcp_pair(int sv[2]);
/* True when FD is an open descriptor. */
int tu_fd_open(int fd);
/* How many descriptors this process has open now (/proc/self/fd). */
int tu_open_fds(void);
/* Fill sockaddr_in/in6 for the loopback address of FAMILY and PORT. */
socklen_t tu_loopback(int family, int port, struct sockaddr_storage *ss);
/* Read exactly N octets from FD (blocking); returns how many came before EOF. */
size_t tu_read_full(int fd, unsigned char *p, size_t n);
/* A port on 127.0.0.1 where nobody listens (bound, then closed). */
int tu_closed_port(void);

/* -- ECL ------------------------------------------------------------------ */

/* cl_boot once, in main. */
void tu_boot(int argc, char **argv);
/* Load $SOCK_FAS (the real Lisp layer: condition classes and the rest),
   then re-register this program's primitives over the ones the fas
   registered, so that streams made by this program's stream.c are the
   ones the primitives recognise.  Aborts the program when loading fails. */
void tu_load_module(void);
/* Read and evaluate FORM (Lisp text) in package ECLSOCK; aborts the test
   when it signals. */
cl_object tu_eval(const char *form);
/* Intern NAME in package PKG. */
cl_object tu_sym(const char *name, const char *pkg);
/* Call the function NAME of package PKG with N Lisp arguments; the test
   fails when it signals an error. */
cl_object tu_call(const char *name, const char *pkg, int n, ...);
/* The second value of the last tu_call (NIL when it had one value). */
extern cl_object tu_value2;
/* The same, but the call must signal: returns the condition (CL:ERROR). */
cl_object tu_call_error(const char *name, const char *pkg, int n, ...);
/* Call FN(ARG) and return the condition (of type CL:ERROR) it signalled,
   or NIL when it returned normally. */
cl_object tu_catch(void (*fn)(void *), void *arg);
/* True when condition C is of the type named NAME in package PKG. */
int tu_typep(cl_object c, const char *name, const char *pkg);
/* The C text of a Lisp object, as princ would print it (static buffer). */
const char *tu_princ(cl_object x);

/* Run suite S with Check's default fork mode and return the exit status. */
int tu_run(Suite *s);

/* The main() of a Check suite: boot ECL, load sock.fas first when
   LOAD_MODULE (for the real condition classes), run SUITE_FN's suite and
   exit with its result. */
#define TU_MAIN(suite_fn, load_module)          \
  int                                           \
  main(int argc, char **argv)                   \
  {                                             \
    int rc;                                     \
    tu_boot(argc, argv);                        \
    if (load_module)                            \
      tu_load_module();                         \
    rc = tu_run(suite_fn());                    \
    cl_shutdown();                              \
    return rc;                                  \
  }

#endif /* TESTUTIL_H */
