/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * ecl-sock.h - the public C interface of ecl-sock, for programs that embed
 * ECL.  Compile and link with:
 *
 *     cc host.c $(pkg-config --cflags --libs ecl-sock) -o host
 *
 * The library carries the whole module: the C primitives and the compiled
 * Lisp layer.  After cl_boot(), ecl_sock_init() makes the SOCKET (alias
 * ACL-SOCKET) and PORT packages exist exactly as (require :sock) would,
 * without sock.fas on disk.
 *
 * Conventions shared by every function below:
 *
 *  - The return value is ECL_SOCK_OK (0) or one of the negative
 *    ECL_SOCK_E* codes.  On failure, ecl_sock_error_message() describes
 *    what went wrong, and output arguments are left untouched.
 *  - No Lisp condition and no non-local exit ever leaves these functions:
 *    a condition signalled by Lisp code becomes ECL_SOCK_ELISP plus the
 *    condition's report as the message.  (Conditions that Lisp code
 *    handles itself never reach C.)
 *  - Except for ecl_sock_version(), ecl_sock_error_message() and
 *    ecl_sock_thread_attach(), they must run in a thread that ECL knows:
 *    the thread that called cl_boot(), a Lisp thread, or a host thread
 *    between ecl_sock_thread_attach() and ecl_sock_thread_detach().
 *    Elsewhere they return ECL_SOCK_ENOTHREAD and touch nothing.
 *  - cl_object values handed to C (streams, results) are kept alive by
 *    the garbage collector while they sit in a local variable of an
 *    attached thread, in static data, or in memory from ecl_alloc();
 *    memory from malloc() is not scanned.
 *  - Lisp errors inside socket code keep their Lisp meaning: a Lisp
 *    handler that lets a SOCKET:SOCKET-ERROR escape gives ECL_SOCK_ELISP
 *    and a message naming the condition type first, e.g.
 *    "CONNECTION-RESET-ERROR: ...".
 */
#ifndef ECL_SOCK_H
#define ECL_SOCK_H

#include <ecl/ecl.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ECL_SOCK_VERSION "0.1.0"

#if defined(__GNUC__) && !defined(_WIN32)
# define ECL_SOCK_API __attribute__((visibility("default")))
#else
# define ECL_SOCK_API
#endif

/* Return codes.  Every code but ECL_SOCK_OK comes with a message from
   ecl_sock_error_message(). */
enum ecl_sock_status {
  ECL_SOCK_OK        =  0,
  ECL_SOCK_EINVAL    = -1,  /* a C argument was rejected (NULL, not a socket) */
  ECL_SOCK_ELISP     = -2,  /* Lisp signalled a condition (or unwound) */
  ECL_SOCK_ENOTHREAD = -3,  /* ECL is not booted, or this thread is unknown to it */
  ECL_SOCK_ESYSTEM   = -4,  /* a system call failed; errno is kept */
  ECL_SOCK_ECLOSED   = -5,  /* the stream or server is closed */
  ECL_SOCK_ENOTINIT  = -6   /* ecl_sock_init() has not succeeded yet */
};

/* Flags for ecl_sock_wrap_fd(). */
#define ECL_SOCK_HOST_OWNS_FD 0x1  /* the host keeps FD and closes it itself */
#define ECL_SOCK_UNBUFFERED   0x2  /* send every write at once (:buffered nil) */

/* The version of the library linked in, e.g. "0.1.0": a static string.
   Never fails, never blocks; callable before cl_boot(). */
ECL_SOCK_API const char *ecl_sock_version(void);

/* Make the module available: packages SOCKET, ACL-SOCKET, PORT and the
   implementation package ECLSOCK, with *MODULES* holding "SOCK", so that a
   later (require :sock) does nothing.  Runs the Lisp layer linked into
   this library; nothing is read from disk.
   Call after cl_boot(), in a thread ECL knows.  Safe to call again and
   from several threads (the module is loaded once; later calls return
   ECL_SOCK_OK at once).  If (require :sock) already loaded the module
   from sock.fas, that copy stays and this returns ECL_SOCK_OK.  *PACKAGE*
   is the same after the call as before.  Does not block on the network.
   Errors: ECL_SOCK_ENOTHREAD; ECL_SOCK_ELISP when loading the Lisp layer
   failed (later calls then return the same failure without retrying). */
ECL_SOCK_API int ecl_sock_init(void);

/* The message describing the last failure in the calling thread: a
   string owned by the library, valid until the next ecl_sock_* call in
   this thread; "" when nothing has failed yet.  Never fails; usable from
   any thread, attached or not. */
ECL_SOCK_API const char *ecl_sock_error_message(void);

/* Wrap FD, a connected stream socket (an accepted TCP connection, a Unix
   domain socket, one end of a socketpair), as a Lisp socket stream: the
   same kind of stream SOCKET:SOCKET-CONNECT returns (bidirectional;
   SOCKET-STATUS, SOCKET-STREAM-PEER, (SETF STREAM-ELEMENT-TYPE) ... all
   work on it).
   ELEMENT_TYPE and EXTERNAL_FORMAT are Lisp text, read in package
   CL-USER with *READ-EVAL* off: "character" or "(unsigned-byte 8)";
   ":utf-8", ":latin-1", "(:utf-8 :crlf)", ":dos" ...  NULL means
   "character" and ":default".
   Ownership: without ECL_SOCK_HOST_OWNS_FD the stream owns FD from a
   successful return on: closing the stream (or the garbage collector,
   when the stream is dropped unclosed) closes FD, and the host must not
   close it.  With ECL_SOCK_HOST_OWNS_FD the stream works on a duplicate
   of FD (so ecl_sock_fd() reports another number): closing the stream
   closes only the duplicate, FD stays open, and the host closes FD when
   it likes (the peer sees end-of-file only after both are closed).
   Either way, socket-stream-shutdown acts on the socket itself, which both
   descriptors share.  On failure nothing changes hands: FD is still the
   caller's, open, and no duplicate is left behind.
   ECL_SOCK_UNBUFFERED sends every write at once (CLISP's :BUFFERED NIL).
   Does not block.  On success *STREAM is the stream.
   Errors: ECL_SOCK_EINVAL (FD negative, not a socket, not a stream
   socket, listening, or not connected (getpeername fails: a peer that
   reset before the wrap counts too); STREAM NULL; unknown flags), ECL_SOCK_ELISP (bad
   element type or external format), ECL_SOCK_ESYSTEM (dup failed),
   ECL_SOCK_ENOTINIT, ECL_SOCK_ENOTHREAD. */
ECL_SOCK_API int ecl_sock_wrap_fd(int fd, const char *element_type,
                                  const char *external_format, int flags,
                                  cl_object *stream);

/* The descriptor under OBJECT, a socket stream or a SOCKET:SOCKET-SERVER,
   into *FD.  The descriptor still belongs to OBJECT: use it (poll,
   setsockopt, getpeername ...) but do not close it, and do not read or
   write it behind the stream's buffers.  Does not block.
   Errors: ECL_SOCK_EINVAL (OBJECT is neither, FD NULL), ECL_SOCK_ECLOSED
   (OBJECT is closed), ECL_SOCK_ENOTINIT, ECL_SOCK_ENOTHREAD. */
ECL_SOCK_API int ecl_sock_fd(cl_object object, int *fd);

/* Register the calling host thread (made with pthread_create, not by
   Lisp) with ECL, so that it may call Lisp and the functions of this
   header.  Call it before anything in the thread makes a Lisp object.
   Nests: each successful call needs one ecl_sock_thread_detach().  A
   thread ECL already knows (the one that ran cl_boot, a Lisp thread) gets
   ECL_SOCK_OK and stays as it is.  May wait briefly for ECL's
   process lock; never blocks on I/O.
   Errors: ECL_SOCK_ENOTHREAD (cl_boot has not run, or ECL refused the
   thread). */
ECL_SOCK_API int ecl_sock_thread_attach(void);

/* Undo one ecl_sock_thread_attach().  The last one unregisters a thread
   that attach registered: its Lisp objects must not be used by it any
   more, and its signal mask is restored to what it was before attach.  A
   thread ECL knew before attach is left registered.
   Errors: ECL_SOCK_EINVAL (no attach to undo in this thread). */
ECL_SOCK_API int ecl_sock_thread_detach(void);

/* Call the Lisp function named FUNCTION (text read in package CL-USER,
   e.g. "handle-client" or "my-package:serve") with the NARGS objects in
   ARGS, catching every condition it does not handle itself.  The first
   value goes to *RESULT when RESULT is not NULL.  Blocks as long as the
   function does.
   Errors: ECL_SOCK_EINVAL (FUNCTION NULL, NARGS negative or too large,
   ARGS NULL with NARGS > 0), ECL_SOCK_ELISP (FUNCTION does not name a
   function, or it signalled: the message names the condition type and
   its report; the host goes on, and so does ECL), ECL_SOCK_ENOTHREAD. */
ECL_SOCK_API int ecl_sock_call(const char *function, int nargs,
                               const cl_object *args, cl_object *result);

/* Flags for ecl_sock_tls_client() and ecl_sock_tls_server(). */
#define ECL_SOCK_TLS_NO_VERIFY      0x1  /* client: accept any certificate */
#define ECL_SOCK_TLS_REQUIRE_CLIENT 0x2  /* server: refuse clients without a valid one */

/* Start TLS (OpenSSL) as a client on STREAM, a connected socket stream
   (from ecl_sock_wrap_fd() or Lisp), and store the TLS stream in *OUT: a
   new socket stream on the same connection, with STREAM's element type
   and external format, which owns the descriptor from now on; STREAM is
   closed (without closing the descriptor) and must not be used again.
   The handshake runs here, bounded by SOCKET:*SSL-HANDSHAKE-TIMEOUT*
   (60 s).  The server's certificate must chain to the system CA store or
   to CA_FILE (a PEM file; NULL for none) and name SERVER_NAME (a host name,
   also sent as SNI, or an IP address; NULL: the host STREAM was connected
   to), unless FLAGS has ECL_SOCK_TLS_NO_VERIFY.  On failure the
   connection is closed (its descriptor too) and the message says why
   ("certificate verify failed: certificate has expired", ...).
   Errors: ECL_SOCK_EINVAL (STREAM or OUT NULL, unknown flags),
   ECL_SOCK_ELISP (not a socket stream; handshake or verification failed;
   built without OpenSSL), ECL_SOCK_ENOTINIT, ECL_SOCK_ENOTHREAD. */
ECL_SOCK_API int ecl_sock_tls_client(cl_object stream, const char *server_name,
                                     const char *ca_file, int flags,
                                     cl_object *out);

/* Start TLS as a server on STREAM (an accepted connection) with the PEM
   certificate (and chain) CERTIFICATE and private key KEY (NULL: in the
   certificate file); *OUT, ownership and failures as for
   ecl_sock_tls_client().  With ECL_SOCK_TLS_REQUIRE_CLIENT, a client must
   present a certificate that chains to CA_FILE. */
ECL_SOCK_API int ecl_sock_tls_server(cl_object stream, const char *certificate,
                                     const char *key, const char *ca_file,
                                     int flags, cl_object *out);

/* Load the Lisp file PATH (source or compiled), as CL:LOAD does, with
   *PACKAGE* bound to CL-USER.  Blocks while the file's top-level forms
   run.  Errors: ECL_SOCK_EINVAL (PATH NULL), ECL_SOCK_ELISP (the file is
   missing, or a form in it signalled), ECL_SOCK_ENOTHREAD. */
ECL_SOCK_API int ecl_sock_load(const char *path);

#ifdef __cplusplus
}
#endif

#endif /* ECL_SOCK_H */
