/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * tlsglue.c - the TLS primitives (lisp/ssl.lisp calls them).
 *
 * Owns: ECLSOCK::%SSL-...: contexts made from settings passed by name
 * (checked here once) and owned by a foreign object with a finalizer,
 * a socket stream moved onto a TLS session with the handshake done,
 * certificates, verify results, counts (eclsock_tlsglue_prims, which glue.c
 * registers; eclsock_tlsglue_init makes the finalizer).
 * Must not: call OpenSSL itself (tls.c does) or leave a session or a
 * descriptor without an owner across an interrupt.
 */
#include "internal.h"
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <string.h>
#include <sys/un.h>
#include <netinet/in.h>

/* -- TLS ---------------------------------------------------------------- */

/* A C string for the Lisp string S, or NULL for NIL. */
static char *
opt_cstring(cl_object s, cl_object *keep)
{
  *keep = ECL_NIL;
  return Null(s) ? NULL : eclsock_arg_cstring(s, keep);
}

static void
free_context(cl_object f)
{
  if (ecl_t_of(f) == t_foreign && f->foreign.data) {
    void *ctx = f->foreign.data;
    f->foreign.data = NULL;
    eclsock_tls_ctx_free(ctx);
  }
}

static cl_object
l_ssl_free_context(cl_object f)
{
  free_context(f);
  ecl_return0(ecl_process_env());
}

/* The contexts' GC finalizer (eclcompat.c says why through
   eclsock_ecl_finalize). */
static cl_object
finalize_context(cl_object f)
{
  return eclsock_ecl_finalize(free_context, f);
}

static cl_object context_finalizer = ECL_NIL;

/* The settings %ssl-make-context takes, by name. */
static const char *const context_keys[] = {
  "MIN-VERSION", "MAX-VERSION", "VERIFY", "MAX-DEPTH", "CRL-CHECK",
  "PREFER-SERVER-ORDER", "CERTIFICATE", "KEY", "PASSWORD", "CA-FILE",
  "CA-DIRECTORY", "CIPHERS", "CIPHERSUITES", "CRL-FILE", NULL
};

/* (%ssl-make-context server settings) -> a foreign object owning the
   SSL_CTX (freed by its finalizer).  SETTINGS is a property list, every
   key optional: :min-version :max-version (TLS version numbers, NIL the
   library's), :verify (0 none, 1 optional, 2 required), :max-depth,
   :crl-check (0 none, 1 leaf, 2 chain), :prefer-server-order (a boolean),
   and the strings :certificate :key :password :ca-file :ca-directory
   :ciphers :ciphersuites :crl-file.  Checked here, before anything is
   made. */
static cl_object
l_ssl_make_context(cl_object server, cl_object v)
{
  struct eclsock_tls_opts o;
  cl_object keep[8], f;
  char msg[300];
  void *ctx;
  int code;
  const cl_env_ptr env = ecl_process_env();
  eclsock_arg_plist(v, context_keys);
  memset(&o, 0, sizeof o);
  o.server = !Null(server);
  o.min_version = eclsock_arg_int_or(eclsock_arg_key(v, "MIN-VERSION"), 0, 0, INT_MAX);
  o.max_version = eclsock_arg_int_or(eclsock_arg_key(v, "MAX-VERSION"), 0, 0, INT_MAX);
  o.verify = eclsock_arg_int_or(eclsock_arg_key(v, "VERIFY"), 0, 0, 2);
  o.max_depth = eclsock_arg_int_or(eclsock_arg_key(v, "MAX-DEPTH"), -1, -1, INT_MAX);
  o.crl_check = eclsock_arg_int_or(eclsock_arg_key(v, "CRL-CHECK"), 0, 0, 2);
  o.prefer_server_order = !Null(eclsock_arg_key(v, "PREFER-SERVER-ORDER"));
  o.certificate = opt_cstring(eclsock_arg_key(v, "CERTIFICATE"), &keep[0]);
  o.key = opt_cstring(eclsock_arg_key(v, "KEY"), &keep[1]);
  o.password = opt_cstring(eclsock_arg_key(v, "PASSWORD"), &keep[2]);
  o.ca_file = opt_cstring(eclsock_arg_key(v, "CA-FILE"), &keep[3]);
  o.ca_directory = opt_cstring(eclsock_arg_key(v, "CA-DIRECTORY"), &keep[4]);
  o.ciphers = opt_cstring(eclsock_arg_key(v, "CIPHERS"), &keep[5]);
  o.ciphersuites = opt_cstring(eclsock_arg_key(v, "CIPHERSUITES"), &keep[6]);
  o.crl_file = opt_cstring(eclsock_arg_key(v, "CRL-FILE"), &keep[7]);
  ecl_disable_interrupts_env(env);
  code = eclsock_tls_ctx_new(&o, &ctx, msg, sizeof msg);
  ecl_enable_interrupts_env(env);
  if (code)
    eclsock_raise_msg("SSL_CTX_new", code, ecl_make_simple_base_string(msg, -1),
                      ECL_NIL, ECL_NIL, ECL_NIL);
  ECL_UNWIND_PROTECT_BEGIN(env) {
    f = ecl_make_foreign_data(ECL_NIL, 0, ctx);
    si_set_finalizer(f, context_finalizer);
    ctx = NULL;
  } ECL_UNWIND_PROTECT_EXIT {
    if (ctx)
      eclsock_tls_ctx_free(ctx);
  } ECL_UNWIND_PROTECT_END;
  (void)keep;
  ecl_return1(env, f);
}

/* (%ssl-wrap stream context server host verify max-depth min-version
   max-version ciphers ciphersuites timeout) -> a new stream on STREAM's
   connection with the TLS handshake done; STREAM is closed (its descriptor
   goes on in the new stream).  VERIFY, MAX-DEPTH, versions NIL: the
   context's.  On failure the connection is closed and the condition
   signalled. */
static cl_object
l_ssl_wrap(cl_object s, cl_object ctxobj, cl_object server, cl_object host,
           cl_object verify, cl_object maxdepth, cl_object minv, cl_object maxv,
           cl_object ciphers, cl_object suites, cl_object timeout)
{
  const cl_env_ptr env = ecl_process_env();
  cl_object keep[3], ns = ECL_NIL;
  eclsock_tls *volatile t = NULL;
  eclsock_deadline dl;
  const char *h, *c, *cs;
  char msg[300];
  int fd, code, srv = !Null(server);
  int vf = eclsock_arg_int_or(verify, -1, INT_MIN, INT_MAX);
  int md = eclsock_arg_int_or(maxdepth, -1, INT_MIN, INT_MAX);
  int lo = eclsock_arg_int_or(minv, 0, INT_MIN, INT_MAX);
  int hi = eclsock_arg_int_or(maxv, 0, INT_MIN, INT_MAX);
  eclsock_conn_stream_arg(s);
  if (ecl_t_of(ctxobj) != t_foreign || !ctxobj->foreign.data)
    FEwrong_type_argument(ecl_make_symbol("SSL-CONTEXT", "SOCKET"), ctxobj);
  dl = eclsock_arg_deadline(timeout);
  h = opt_cstring(host, &keep[0]);
  c = opt_cstring(ciphers, &keep[1]);
  cs = opt_cstring(suites, &keep[2]);
  if ((fd = eclsock_stream_fd(s)) < 0)
    eclsock_raise("SSL_new", EBADF, ECL_NIL, ECL_NIL, s);
  if (eclsock_stream_tls(s))
    FEerror("~S is already a TLS stream.", 1, s);
  eclsock_stream_flush(s);
  if (eclsock_stream_buffered_input(s))
    FEerror("~S has read input ahead that TLS would lose: read it before "
            "starting TLS.", 1, s);
  /* session and stream switch with interrupts deferred: neither the
     session nor the descriptor may be left without an owner */
  ecl_bds_bind(env, ECL_INTERRUPTS_ENABLED, ECL_NIL);
  code = eclsock_tls_new(ctxobj->foreign.data, fd, srv, h, vf, md, lo, hi, c, cs, (eclsock_tls **)&t, msg, sizeof msg);
  if (!code)
    ns = eclsock_stream_move_to_tls(s, t);
  ecl_bds_unwind1(env);
  ecl_check_pending_interrupts(env);
  if (code)
    eclsock_raise_msg("SSL_new", code, ecl_make_simple_base_string(msg, -1),
                      host, ECL_NIL, s);
  code = eclsock_tls_handshake(t, dl);
  if (code) {
    const char *m = eclsock_tls_message(t);
    cl_object text = m ? ecl_make_simple_base_string(m, -1) : ECL_NIL;
    cl_object detail = code == ECLSOCK_ETLSVERIFY
      ? ecl_make_fixnum(eclsock_tls_verify_result(t)) : ECL_NIL;
    cl_close(1, ns);                  /* frees the session, closes the fd */
    eclsock_raise_detail(srv ? "SSL_accept" : "SSL_connect", code, text, detail,
                         srv ? ECL_NIL : host, ECL_NIL, ECL_NIL);
  }
  (void)keep;
  ecl_return1(env, ns);
}

/* The session of socket stream S, or a type error when it has none. */
static eclsock_tls *
tls_of(cl_object s)
{
  eclsock_tls *t = eclsock_stream_p(s) ? eclsock_stream_tls(s) : NULL;
  if (!t)
    FEwrong_type_argument(ecl_make_symbol("SSL-SOCKET-STREAM", "SOCKET"), s);
  return t;
}

/* (%ssl-stream-p x) -> true for a socket stream with a TLS session */
static cl_object
l_ssl_stream_p(cl_object x)
{
  ecl_return1(ecl_process_env(),
              (eclsock_stream_p(x) && eclsock_stream_tls(x)) ? ECL_T : ECL_NIL);
}

static cl_object
l_ssl_peer_certificate(cl_object s)
{
  ecl_return1(ecl_process_env(), eclsock_tls_peer_certificate(tls_of(s)));
}

static cl_object
l_ssl_verify_result(cl_object s)
{
  ecl_return1(ecl_process_env(), ecl_make_integer(eclsock_tls_verify_result(tls_of(s))));
}

static cl_object
l_ssl_description(cl_object s)
{
  ecl_return1(ecl_process_env(), eclsock_tls_description(tls_of(s)));
}

/* (%ssl-counts) -> live sessions, live contexts, whether TLS is built in */
static cl_object
l_ssl_counts(void)
{
  ecl_return3(ecl_process_env(), ecl_make_integer(eclsock_tls_live_sessions()),
              ecl_make_integer(eclsock_tls_live_contexts()),
              eclsock_tls_available() ? ECL_T : ECL_NIL);
}

/* The primitives of this file, for glue.c's registration. */
const struct eclsock_prim eclsock_tlsglue_prims[] = {
  { "%SSL-MAKE-CONTEXT", (void *)l_ssl_make_context, 2 },
  { "%SSL-FREE-CONTEXT", (void *)l_ssl_free_context, 1 },
  { "%SSL-WRAP", (void *)l_ssl_wrap, 11 },
  { "%SSL-STREAM-P", (void *)l_ssl_stream_p, 1 },
  { "%SSL-PEER-CERTIFICATE", (void *)l_ssl_peer_certificate, 1 },
  { "%SSL-VERIFY-RESULT", (void *)l_ssl_verify_result, 1 },
  { "%SSL-DESCRIPTION", (void *)l_ssl_description, 1 },
  { "%SSL-COUNTS", (void *)l_ssl_counts, 0 },
};
const size_t eclsock_tlsglue_nprims = sizeof eclsock_tlsglue_prims / sizeof eclsock_tlsglue_prims[0];

/* Make the contexts' finalizer once (glue.c's init calls it). */
void
eclsock_tlsglue_init(void)
{
  if (Null(context_finalizer)) {
    context_finalizer = ecl_make_cfun((cl_objectfn_fixed)finalize_context,
                                      eclsock_sym("%FINALIZE-SSL-CONTEXT"), ECL_NIL, 1);
    ecl_register_root(&context_finalizer);
  }
}
