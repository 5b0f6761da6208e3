/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * api.c - the public C interface declared in ecl-sock.h (the only symbols
 * libecl-sock exports).
 *
 * Owns: loading the Lisp layer linked into the library, host thread
 * registration, and the boundary between C and Lisp errors: every entry
 * point checks that ECL runs and knows the calling thread, then runs its
 * Lisp part under protect(), which turns any condition or non-local exit
 * into a return code and a per-thread message.
 *
 * Lisp is reached through symbols (ECLSOCK::%WRAP-FD, SOCKET-STREAM-P ...),
 * never through stream.c directly, so that the functions work the same
 * when the module came from sock.fas by (require :sock): that copy of
 * the C primitives is then the live one.
 */
#include "internal.h"
#include "ecl-sock.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The entry point build.lisp gives the Lisp layer's archive. */
extern void init_lib_ECL_SOCK(cl_object);

#define MAX_CALL_ARGS 64

/* -- Messages ------------------------------------------------------------- */

static __thread char last_message[512];

static void
set_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
set_message(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, ap);
  va_end(ap);
}

const char *
ecl_sock_error_message(void)
{
  return last_message;
}

const char *
ecl_sock_version(void)
{
  return ECL_SOCK_VERSION;
}

/* Copy the Lisp string S into BUF (characters outside ASCII become '?'). */
static void
copy_lisp_string(cl_object s, char *buf, size_t len)
{
  cl_index i, n = ecl_length(s);
  size_t j = 0;
  for (i = 0; i < n && j + 1 < len; i++) {
    ecl_character c = ecl_char(s, i);
    buf[j++] = (c >= 32 && c < 127) || c == '\n' || c == '\t' ? (char)c : '?';
  }
  buf[j] = 0;
}

/* "TYPE: report" for CONDITION, without letting a failing report escape. */
static void
set_message_from_condition(cl_env_ptr env, cl_object condition)
{
  char type[128], text[384];
  strcpy(type, "CONDITION");
  strcpy(text, "(the condition's report failed)");
  ECL_CATCH_ALL_BEGIN(env) {
    ECL_HANDLER_CASE_BEGIN(env, ecl_list1(ecl_make_symbol("SERIOUS-CONDITION", "CL"))) {
      cl_object t = cl_type_of(condition);
      if (ECL_CONSP(t))
        t = ECL_CONS_CAR(t);
      if (ECL_SYMBOLP(t))
        copy_lisp_string(ecl_symbol_name(t), type, sizeof type);
      copy_lisp_string(cl_princ_to_string(condition), text, sizeof text);
    } ECL_HANDLER_CASE(1, c) {
      (void)c;
    } ECL_HANDLER_CASE_END;
  } ECL_CATCH_ALL_IF_CAUGHT {
  } ECL_CATCH_ALL_END;
  set_message("%s: %s", type, text);
}

/* -- The C/Lisp boundary -------------------------------------------------- */

/* Run FN(ENV, CTX) with every serious condition and non-local exit caught.
   Returns ECL_SOCK_OK and FN's value in *OUT, or ECL_SOCK_ELISP. */
static int
protect(cl_env_ptr env, cl_object (*fn)(cl_env_ptr, void *), void *ctx,
        cl_object *out)
{
  volatile int rc = ECL_SOCK_OK;
  volatile cl_object result = ECL_NIL;
  ECL_CATCH_ALL_BEGIN(env) {
    ECL_HANDLER_CASE_BEGIN(env, ecl_list1(ecl_make_symbol("SERIOUS-CONDITION", "CL"))) {
      result = fn(env, ctx);
    } ECL_HANDLER_CASE(1, condition) {
      set_message_from_condition(env, condition);
      rc = ECL_SOCK_ELISP;
    } ECL_HANDLER_CASE_END;
  } ECL_CATCH_ALL_IF_CAUGHT {
    set_message("a non-local exit (throw or process kill) left the Lisp code");
    rc = ECL_SOCK_ELISP;
  } ECL_CATCH_ALL_END;
  if (out)
    *out = result;
  return rc;
}

/* The environment of the calling thread, or NULL (with the message set)
   when ECL has not booted or does not know this thread. */
static cl_env_ptr
lisp_env(void)
{
  cl_env_ptr env;
  if (ecl_get_option(ECL_OPT_BOOTED) <= 0) {
    set_message("ECL is not running: call cl_boot() first");
    return NULL;
  }
  env = ecl_process_env_unsafe();
  if (!env)
    set_message("this thread is unknown to ECL: call ecl_sock_thread_attach() first");
  return env;
}

static int
module_present(void)
{
  cl_object m = ecl_symbol_value(ecl_make_symbol("*MODULES*", "CL"));
  for (; ECL_CONSP(m); m = ECL_CONS_CDR(m)) {
    cl_object x = ECL_CONS_CAR(m);
    if (ECL_STRINGP(x) && ecl_length(x) == 4 && ecl_char(x, 0) == 'S'
        && ecl_char(x, 1) == 'O' && ecl_char(x, 2) == 'C' && ecl_char(x, 3) == 'K')
      return 1;
  }
  return 0;
}

/* Lisp symbols by name; the packages exist once the module is loaded. */
static cl_object sym_cl(const char *n) { return ecl_make_symbol(n, "CL"); }
static cl_object sym_impl(const char *n) { return ecl_make_symbol(n, "ECLSOCK"); }

/* Read TEXT as one Lisp object in CL-USER with *READ-EVAL* off. */
static cl_object
read_text(cl_env_ptr env, const char *text)
{
  cl_object x;
  ecl_bds_bind(env, sym_cl("*PACKAGE*"), cl_find_package(ecl_make_constant_base_string("CL-USER", -1)));
  ecl_bds_bind(env, sym_cl("*READ-EVAL*"), ECL_NIL);
  x = cl_read_from_string(1, ecl_make_simple_base_string((char *)text, -1));
  ecl_bds_unwind_n(env, 2);
  return x;
}

/* -- ecl_sock_init -------------------------------------------------------- */

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int init_state;                  /* 0 not yet, 1 done, -1 failed */
static char init_failure[512];

static cl_object
run_init(cl_env_ptr env, void *ctx)
{
  (void)ctx;
  /* The module's files say (in-package ...): keep the host's *PACKAGE*. */
  ecl_bds_bind(env, sym_cl("*PACKAGE*"), ecl_symbol_value(sym_cl("*PACKAGE*")));
  ecl_init_module(NULL, init_lib_ECL_SOCK);
  ecl_bds_unwind1(env);
  if (!module_present())
    FEerror("the linked-in Lisp layer ran but did not provide SOCK", 0);
  return ECL_T;
}

int
ecl_sock_init(void)
{
  cl_env_ptr env = lisp_env();
  int rc = ECL_SOCK_OK;
  if (!env)
    return ECL_SOCK_ENOTHREAD;
  pthread_mutex_lock(&init_lock);
  if (init_state == 0) {
    if (module_present()) {             /* (require :sock) came first */
      init_state = 1;
    } else {
      rc = protect(env, run_init, NULL, NULL);
      init_state = rc ? -1 : 1;
      if (rc)
        snprintf(init_failure, sizeof init_failure, "%s", last_message);
    }
  } else if (init_state < 0) {
    rc = ECL_SOCK_ELISP;
    set_message("an earlier ecl_sock_init() failed: %s", init_failure);
  }
  pthread_mutex_unlock(&init_lock);
  return rc;
}

/* The checks shared by the functions that need the module. */
static cl_env_ptr
module_env(int *rc)
{
  cl_env_ptr env = lisp_env();
  if (!env) {
    *rc = ECL_SOCK_ENOTHREAD;
    return NULL;
  }
  if (!module_present()) {
    set_message("the SOCK module is not loaded: call ecl_sock_init() first");
    *rc = ECL_SOCK_ENOTINIT;
    return NULL;
  }
  *rc = ECL_SOCK_OK;
  return env;
}

/* -- Wrapping descriptors ------------------------------------------------- */

struct wrap_args {
  const char *elttype, *extfmt;
  int fd, buffered;
};

static cl_object
run_wrap(cl_env_ptr env, void *ctx)
{
  struct wrap_args *w = ctx;
  cl_object elt = w->elttype ? read_text(env, w->elttype) : sym_cl("CHARACTER");
  cl_object fmt = w->extfmt ? read_text(env, w->extfmt) : ecl_make_keyword("DEFAULT");
  elt = cl_funcall(2, sym_impl("NORMALIZE-ELEMENT-TYPE"), elt);
  fmt = cl_funcall(2, sym_impl("NORMALIZE-EXTERNAL-FORMAT"), fmt);
  return cl_funcall(7, sym_impl("%WRAP-FD"), ecl_make_fixnum(w->fd), elt, fmt,
                    w->buffered ? ECL_T : ECL_NIL, ECL_NIL, ECL_NIL);
}

/* 0 when FD is a connected (non-listening) stream socket. */
static int
check_socket_fd(int fd)
{
  int type = 0, listening = 0, e;
  eclsock_addr peer;
  if (fd < 0) {
    set_message("descriptor %d is negative", fd);
    return -1;
  }
  if ((e = eclsock_os_socket_kind(fd, &type, &listening))) {
    set_message("descriptor %d is not a socket: %s", fd, eclsock_err_message(e));
    return -1;
  }
  if (type != SOCK_STREAM) {
    set_message("descriptor %d is not a stream socket (SO_TYPE %d)", fd, type);
    return -1;
  }
  if (listening) {
    set_message("descriptor %d is a listening socket, not a connection", fd);
    return -1;
  }
  if ((e = eclsock_addr_peer(fd, &peer))) {
    set_message("descriptor %d is not connected: %s", fd, eclsock_err_message(e));
    return -1;
  }
  return 0;
}

int
ecl_sock_wrap_fd(int fd, const char *element_type, const char *external_format,
                 int flags, cl_object *stream)
{
  struct wrap_args w;
  cl_object s;
  int rc;
  cl_env_ptr env = module_env(&rc);
  if (!env)
    return rc;
  if (!stream) {
    set_message("ecl_sock_wrap_fd: STREAM is NULL");
    return ECL_SOCK_EINVAL;
  }
  if (flags & ~(ECL_SOCK_HOST_OWNS_FD | ECL_SOCK_UNBUFFERED)) {
    set_message("ecl_sock_wrap_fd: unknown flags 0x%x", (unsigned)flags);
    return ECL_SOCK_EINVAL;
  }
  if (check_socket_fd(fd))
    return ECL_SOCK_EINVAL;
  w.elttype = element_type;
  w.extfmt = external_format;
  w.buffered = !(flags & ECL_SOCK_UNBUFFERED);
  w.fd = fd;
  if (flags & ECL_SOCK_HOST_OWNS_FD) {
    int e = eclsock_os_dup(fd, &w.fd);
    if (e) {
      set_message("cannot duplicate descriptor %d: %s", fd, eclsock_err_message(e));
      errno = e;
      return ECL_SOCK_ESYSTEM;
    }
  }
  /* A failure happens before the stream takes the descriptor (the
     arguments are checked first), so the duplicate is still ours. */
  rc = protect(env, run_wrap, &w, &s);
  if (rc) {
    if (w.fd != fd)
      (void)eclsock_os_close(w.fd);
    return rc;
  }
  if (w.fd != fd)
    eclsock_stream_set_shared(s);     /* closing it must leave the host's socket up */
  *stream = s;
  return ECL_SOCK_OK;
}

/* -- TLS ---------------------------------------------------------------- */

struct tls_args {
  cl_object stream;
  const char *name, *certificate, *key, *ca_file;
  int flags, server;
};

static cl_object
text_or_nil(const char *s)
{
  return s ? ecl_make_simple_base_string(s, -1) : ECL_NIL;
}

static cl_object
run_tls(cl_env_ptr env, void *ctx)
{
  struct tls_args *a = ctx;
  (void)env;
  if (a->server)
    return cl_funcall(10, ecl_make_symbol("MAKE-SSL-SERVER-STREAM", "SOCKET"), a->stream,
                      ecl_make_keyword("CERTIFICATE"), text_or_nil(a->certificate),
                      ecl_make_keyword("KEY"), text_or_nil(a->key),
                      ecl_make_keyword("CA-FILE"), text_or_nil(a->ca_file),
                      ecl_make_keyword("VERIFY"),
                      (a->flags & ECL_SOCK_TLS_REQUIRE_CLIENT)
                      ? ecl_make_keyword("REQUIRED") : ECL_NIL);
  return cl_funcall(8, ecl_make_symbol("MAKE-SSL-CLIENT-STREAM", "SOCKET"), a->stream,
                    ecl_make_keyword("SERVER-NAME"), text_or_nil(a->name),
                    ecl_make_keyword("CA-FILE"), text_or_nil(a->ca_file),
                    ecl_make_keyword("VERIFY"),
                    (a->flags & ECL_SOCK_TLS_NO_VERIFY) ? ECL_NIL
                    : ecl_make_keyword("REQUIRED"));
}

static int
start_tls(struct tls_args *a, int allowed, const char *who, cl_object *out)
{
  int rc;
  cl_env_ptr env = module_env(&rc);
  if (!env)
    return rc;
  if (!a->stream || !out) {
    set_message("%s: %s is NULL", who, a->stream ? "OUT" : "STREAM");
    return ECL_SOCK_EINVAL;
  }
  if (a->flags & ~allowed) {
    set_message("%s: unknown flags 0x%x", who, (unsigned)a->flags);
    return ECL_SOCK_EINVAL;
  }
  return protect(env, run_tls, a, out);
}

int
ecl_sock_tls_client(cl_object stream, const char *server_name, const char *ca_file,
                    int flags, cl_object *out)
{
  struct tls_args a = { stream, server_name, NULL, NULL, ca_file, flags, 0 };
  return start_tls(&a, ECL_SOCK_TLS_NO_VERIFY, "ecl_sock_tls_client", out);
}

int
ecl_sock_tls_server(cl_object stream, const char *certificate, const char *key,
                    const char *ca_file, int flags, cl_object *out)
{
  struct tls_args a = { stream, NULL, certificate, key, ca_file, flags, 1 };
  return start_tls(&a, ECL_SOCK_TLS_REQUIRE_CLIENT, "ecl_sock_tls_server", out);
}

struct fd_args { cl_object object; int kind; };   /* 1 stream, 2 server */

static cl_object
run_kind(cl_env_ptr env, void *ctx)
{
  struct fd_args *a = ctx;
  (void)env;
  if (!Null(cl_funcall(2, sym_impl("SOCKET-STREAM-P"), a->object)))
    a->kind = 1;
  else if (!Null(cl_funcall(2, sym_impl("SOCKET-SERVER-P"), a->object)))
    a->kind = 2;
  else
    return ECL_NIL;
  return cl_funcall(2, a->kind == 1 ? sym_impl("%STREAM-FD") : sym_impl("SOCKET-SERVER-FD"),
                    a->object);
}

int
ecl_sock_fd(cl_object object, int *fd)
{
  struct fd_args a;
  cl_object x;
  int rc;
  cl_env_ptr env = module_env(&rc);
  if (!env)
    return rc;
  if (!fd || !object) {
    set_message("ecl_sock_fd: %s is NULL", fd ? "OBJECT" : "FD");
    return ECL_SOCK_EINVAL;
  }
  a.object = object;
  a.kind = 0;
  if ((rc = protect(env, run_kind, &a, &x)))
    return rc;
  if (!a.kind) {
    set_message("ecl_sock_fd: the object is neither a socket stream nor a socket server");
    return ECL_SOCK_EINVAL;
  }
  if (!ECL_FIXNUMP(x)) {
    set_message("ecl_sock_fd: the socket %s is closed", a.kind == 1 ? "stream" : "server");
    return ECL_SOCK_ECLOSED;
  }
  *fd = (int)ecl_fixnum(x);
  return ECL_SOCK_OK;
}

/* -- Host threads --------------------------------------------------------- */

static __thread int attach_depth;       /* attaches not yet undone */
static __thread int attach_imported;    /* attach registered this thread */
static __thread sigset_t attach_mask;   /* signal mask before registering */

int
ecl_sock_thread_attach(void)
{
  if (ecl_get_option(ECL_OPT_BOOTED) <= 0) {
    set_message("ECL is not running: call cl_boot() first");
    return ECL_SOCK_ENOTHREAD;
  }
  if (attach_depth > 0) {
    attach_depth++;
    return ECL_SOCK_OK;
  }
  if (ecl_process_env_unsafe()) {       /* already a Lisp thread */
    attach_depth = 1;
    attach_imported = 0;
    return ECL_SOCK_OK;
  }
  pthread_sigmask(SIG_BLOCK, NULL, &attach_mask);
  if (!ecl_import_current_thread(ECL_NIL, ECL_NIL)) {
    set_message("ECL refused to register this thread");
    return ECL_SOCK_ENOTHREAD;
  }
  attach_depth = 1;
  attach_imported = 1;
  return ECL_SOCK_OK;
}

int
ecl_sock_thread_detach(void)
{
  if (attach_depth <= 0) {
    set_message("ecl_sock_thread_detach: this thread has no attach to undo");
    return ECL_SOCK_EINVAL;
  }
  if (--attach_depth > 0)
    return ECL_SOCK_OK;
  if (attach_imported) {
    attach_imported = 0;
    ecl_release_current_thread();
    /* ECL blocks its interrupt signal in a thread it lets go. */
    pthread_sigmask(SIG_SETMASK, &attach_mask, NULL);
  }
  return ECL_SOCK_OK;
}

/* -- Calling Lisp ----------------------------------------------------------- */

struct call_args {
  const char *function;
  int nargs;
  const cl_object *args;
};

static cl_object
run_call(cl_env_ptr env, void *ctx)
{
  struct call_args *c = ctx;
  cl_object name = read_text(env, c->function), list = ECL_NIL;
  int i;
  if (!ECL_SYMBOLP(name) || Null(cl_fboundp(name)) || !Null(cl_macro_function(1, name))
      || !Null(cl_special_operator_p(name)))
    FEerror("~S does not name a function", 1, name);
  for (i = c->nargs; i-- > 0; )
    list = ecl_cons(c->args[i], list);
  return cl_apply(2, name, list);
}

int
ecl_sock_call(const char *function, int nargs, const cl_object *args,
              cl_object *result)
{
  struct call_args c;
  cl_object x;
  int rc;
  cl_env_ptr env = lisp_env();
  if (!env)
    return ECL_SOCK_ENOTHREAD;
  if (!function || nargs < 0 || nargs > MAX_CALL_ARGS || (nargs > 0 && !args)) {
    set_message("ecl_sock_call: bad arguments (FUNCTION %s, NARGS %d, ARGS %s)",
                function ? "given" : "NULL", nargs, args ? "given" : "NULL");
    return ECL_SOCK_EINVAL;
  }
  c.function = function;
  c.nargs = nargs;
  c.args = args;
  if ((rc = protect(env, run_call, &c, &x)))
    return rc;
  if (result)
    *result = x;
  return ECL_SOCK_OK;
}

static cl_object
run_load(cl_env_ptr env, void *ctx)
{
  cl_object path = ecl_make_simple_base_string((char *)ctx, -1), x;
  ecl_bds_bind(env, sym_cl("*PACKAGE*"), cl_find_package(ecl_make_constant_base_string("CL-USER", -1)));
  x = cl_load(3, path, ecl_make_keyword("VERBOSE"), ECL_NIL);
  ecl_bds_unwind1(env);
  return x;
}

int
ecl_sock_load(const char *path)
{
  cl_env_ptr env = lisp_env();
  if (!env)
    return ECL_SOCK_ENOTHREAD;
  if (!path) {
    set_message("ecl_sock_load: PATH is NULL");
    return ECL_SOCK_EINVAL;
  }
  return protect(env, run_load, (void *)path, NULL);
}
