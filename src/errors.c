/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * errors.c - error codes to names, messages and Lisp conditions.
 *
 * Owns: the one table that names error codes (errno values, resolver codes
 * and our ECLSOCK_E* codes), both ways (code -> name for C, name -> code for
 * the Lisp layer's own errors), and eclsock_raise(), the one place where a
 * code becomes a Lisp condition.  Also the module's symbols (eclsock_sym),
 * which every layer from here up uses.  C never picks a condition class: it hands the
 * code's keyword (:ECONNREFUSED, :ETIMEDOUT, :EAI-NONAME ...) to
 * ECLSOCK::%SIGNAL-SOCKET-ERROR, and lisp/conditions.lisp maps keywords to
 * classes.
 */
#include "internal.h"
#include <errno.h>
#include <netdb.h>
#include <string.h>

#define ECLSOCK_ERRNO_MAP(X)                                    \
  X(EPERM) X(ENOENT) X(EINTR) X(EIO) X(EBADF) X(EAGAIN)          \
  X(ENOMEM) X(EACCES) X(EFAULT) X(EEXIST) X(ENOTDIR) X(EINVAL)   \
  X(ENFILE) X(EMFILE) X(ENOSPC) X(EPIPE) X(ENAMETOOLONG)        \
  X(ENOTSOCK) X(EDESTADDRREQ) X(EMSGSIZE) X(EPROTOTYPE)          \
  X(ENOPROTOOPT) X(EPROTONOSUPPORT) X(ESOCKTNOSUPPORT)           \
  X(EOPNOTSUPP) X(EPFNOSUPPORT) X(EAFNOSUPPORT) X(EADDRINUSE)    \
  X(EADDRNOTAVAIL) X(ENETDOWN) X(ENETUNREACH) X(ENETRESET)       \
  X(ECONNABORTED) X(ECONNRESET) X(ENOBUFS) X(EISCONN)            \
  X(ENOTCONN) X(ESHUTDOWN) X(ETIMEDOUT) X(ECONNREFUSED)          \
  X(EHOSTDOWN) X(EHOSTUNREACH) X(EALREADY) X(EINPROGRESS)        \
  X(EPROTO)

#define ECLSOCK_EAI_MAP(X)                                        \
  X(EAI_NONAME, "EAI-NONAME") X(EAI_AGAIN, "EAI-AGAIN")             \
  X(EAI_FAIL, "EAI-FAIL") X(EAI_FAMILY, "EAI-FAMILY")               \
  X(EAI_SOCKTYPE, "EAI-SOCKTYPE") X(EAI_SERVICE, "EAI-SERVICE")     \
  X(EAI_MEMORY, "EAI-MEMORY") X(EAI_BADFLAGS, "EAI-BADFLAGS")       \
  X(EAI_OVERFLOW, "EAI-OVERFLOW") X(EAI_NODATA, "EAI-NODATA")       \
  X(EAI_ADDRFAMILY, "EAI-ADDRFAMILY")

/* The keyword name of CODE ("ECONNREFUSED"), or "UNKNOWN". */
const char *
eclsock_err_name(int code)
{
  switch (code) {
#define X(e) case e: return #e;
    ECLSOCK_ERRNO_MAP(X)
#undef X
#define X(e, n) case ECLSOCK_EAI(e): return n;
    ECLSOCK_EAI_MAP(X)
#undef X
  case ECLSOCK_ETIMEOUT: return "ETIMEDOUT";
  case ECLSOCK_EBADARG:  return "EINVAL";
  case ECLSOCK_ENOADDR:  return "EAI-NONAME";
  case ECLSOCK_ETOOLONG: return "ENAMETOOLONG";
  case ECLSOCK_ETLS:    return "TLS-ERROR";
  case ECLSOCK_ETLSHANDSHAKE: return "TLS-HANDSHAKE";
  case ECLSOCK_ETLSVERIFY: return "TLS-VERIFY";
  case ECLSOCK_ETLSCONFIG: return "TLS-CONFIG";
  case ECLSOCK_ENOTLS:  return "TLS-UNAVAILABLE";
  case ECLSOCK_ETLSTIMEOUT: return "TLS-HANDSHAKE-TIMEOUT";
  case ECLSOCK_ENOPATH:  return "EINVAL";
  default: return "UNKNOWN";
  }
}

/* The code named NAME ("EBADF", "ETIMEDOUT", "EAI-NONAME"), the inverse
   of eclsock_err_name for the errno values and resolver codes; 0 when NAME
   names none. */
int
eclsock_err_code(const char *name)
{
#define X(e) if (!strcmp(name, #e)) return e;
  ECLSOCK_ERRNO_MAP(X)
#undef X
#define X(e, n) if (!strcmp(name, n)) return ECLSOCK_EAI(e);
  ECLSOCK_EAI_MAP(X)
#undef X
  return 0;
}

/* A message for humans about CODE. */
const char *
eclsock_err_message(int code)
{
  if (code > 0)
    return strerror(code);
  if (ECLSOCK_IS_EAI(code))
    return gai_strerror(code - ECLSOCK_EAI_BASE);
  switch (code) {
  case ECLSOCK_ETIMEOUT: return "Timed out";
  case ECLSOCK_EBADARG:  return "Invalid argument";
  case ECLSOCK_ENOADDR:  return "Name resolved to no usable address";
  case ECLSOCK_ETOOLONG: return "Socket file name too long";
  case ECLSOCK_ETLS:    return "TLS protocol error";
  case ECLSOCK_ETLSHANDSHAKE: return "TLS handshake failed";
  case ECLSOCK_ETLSVERIFY: return "The peer's certificate was refused";
  case ECLSOCK_ETLSCONFIG: return "Bad TLS setting";
  case ECLSOCK_ENOTLS:  return "ecl-sock was built without OpenSSL (--without-openssl)";
  case ECLSOCK_ETLSTIMEOUT: return "The TLS handshake timed out";
  case ECLSOCK_ENOPATH:
    return "Empty socket file name (abstract Unix sockets are not supported)";
  default: return "Unknown error";
  }
}

/* The errno to report for CODE: the errno itself, ETIMEDOUT for our own
   timeouts, NIL for resolver codes. */
static cl_object
code_errno(int code)
{
  if (code > 0)
    return ecl_make_fixnum(code);
  switch (code) {
  case ECLSOCK_ETIMEOUT: return ecl_make_fixnum(ETIMEDOUT);
  case ECLSOCK_ETLSTIMEOUT: return ecl_make_fixnum(ETIMEDOUT);
  case ECLSOCK_EBADARG:  return ecl_make_fixnum(EINVAL);
  case ECLSOCK_ETOOLONG: return ecl_make_fixnum(ENAMETOOLONG);
  case ECLSOCK_ENOPATH:  return ecl_make_fixnum(EINVAL);
  default: return ECL_NIL;
  }
}

cl_object
eclsock_sym(const char *name)
{
  return ecl_make_symbol(name, "ECLSOCK");
}

void
eclsock_raise(const char *op, int code, cl_object host, cl_object port,
              cl_object stream)
{
  eclsock_raise_msg(op, code, ECL_NIL, host, port, stream);
}

void
eclsock_raise_msg(const char *op, int code, cl_object message, cl_object host,
                  cl_object port, cl_object stream)
{
  eclsock_raise_detail(op, code, message, ECL_NIL, host, port, stream);
}

void
eclsock_signal_truncation(cl_object stream)
{
  cl_funcall(2, eclsock_sym("%SIGNAL-TRUNCATION"), stream);
}

void
eclsock_raise_detail(const char *op, int code, cl_object message,
                     cl_object detail, cl_object host, cl_object port,
                     cl_object stream)
{
  cl_object args[7];
  args[0] = ecl_make_simple_base_string(op, -1);
  args[1] = ecl_make_keyword(eclsock_err_name(code));
  args[2] = code_errno(code);
  args[3] = Null(message) ? ecl_make_simple_base_string(eclsock_err_message(code), -1)
    : message;
  args[4] = host;
  args[5] = port;
  args[6] = stream;
  cl_funcall(9, eclsock_sym("%SIGNAL-SOCKET-ERROR"), args[0], args[1],
             args[2], args[3], args[4], args[5], args[6], detail);
  /* %signal-socket-error uses ERROR, which does not return */
  FEerror("ecl-sock: socket error handler returned", 0);
}
