/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * eclcompat.c - every use of ECL's internals, in one place, each with what
 * it relies on.
 *
 * Owns: making an ECL fd stream from a descriptor (ECL's own constructor,
 * which no installed header declares), giving a stream a private copy of
 * its dispatch table, ECL's generic close (static in ECL: taken from a
 * closed template stream), telling the flushes ECL makes by itself
 * (terpri, the printer) from explicit ones (by call site, calibrated at
 * load on a probe stream), and running the module's finalizers without
 * touching the interrupted thread's values array.
 * Must not: know the socket stream's struct or do any I/O of its own.
 */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

/* ECL's file.d defines this for every build with POSIX streams (21.2.1,
   24.5.10); ecl/external.h does not declare it. */
extern ECL_API cl_object ecl_make_file_stream_from_fd(cl_object name, int fd,
                                                      enum ecl_smmode smm,
                                                      cl_fixnum byte_size,
                                                      int flags,
                                                      cl_object external_format);

/* ECL's generic_close is static; we take it from a closed template
   stream (ECL's close of a file stream ends in it and leaves it as the
   table's close). */
static cl_object (*generic_close_fn)(cl_object);

/* A two-way fd stream over FD (ECL's constructor). */
cl_object
eclsock_ecl_fd_stream(cl_object name, int fd, cl_fixnum byte_size, int flags,
                      cl_object extfmt)
{
  return ecl_make_file_stream_from_fd(name, fd, ecl_smm_io, byte_size, flags,
                                      extfmt);
}

/* Give S the dispatch table OPS, a copy of its own (ECL never replaces a
   file stream's table, it only edits it in place: on close). */
void
eclsock_ecl_own_ops(cl_object s, struct ecl_file_ops *ops)
{
  *ops = *s->stream.ops;
  s->stream.ops = ops;
}

/* Copy into S's table the operations of a fresh fd stream of another
   element type or external format (set-element-type). */
void
eclsock_ecl_retype(cl_object s, cl_fixnum byte_size, int flags, cl_object extfmt)
{
  cl_object t = ecl_make_file_stream_from_fd(s->stream.object1, -1, ecl_smm_io,
                                             byte_size, flags, extfmt);
  si_set_finalizer(t, ECL_NIL);
  *s->stream.ops = *t->stream.ops;
  eclsock_ecl_copy_encoding(s, t);
  /* closed the way ECL closes (not just flagged): ECL 24.5.10 closes every
     file stream the GC collects, even after si_set_finalizer(t, NIL), and
     a flagged one would then close(-1) from a finalizer */
  generic_close_fn(t);
}

/* Give S the element type and external format of FROM: the fields ECL's
   own constructor fills for them (set-element-type and the TLS switch). */
void
eclsock_ecl_copy_encoding(cl_object s, cl_object from)
{
  s->stream.object0 = from->stream.object0;
  s->stream.format = from->stream.format;
  s->stream.format_table = from->stream.format_table;
  s->stream.encoder = from->stream.encoder;
  s->stream.decoder = from->stream.decoder;
  s->stream.flags = from->stream.flags;
  s->stream.byte_size = from->stream.byte_size;
}

/* ECL's own close: marks S closed and makes its operations signal. */
cl_object
eclsock_ecl_generic_close(cl_object s)
{
  return generic_close_fn(s);
}

/* -- Finalizers ----------------------------------------------------------- */

/* ECL's collector runs a finalizer inside the allocation that found it
   due, in the thread that allocated, and around it puts back only the
   first NVALUES slots of that thread's values array (CL_NEWENV_BEGIN in
   alloc_2.d's wrapped_finalizer).  But ECL also passes the arguments of a
   call to an interpreted function, a generic function or FUNCALL in that
   array (ECL_STACK_FRAME_VARARGS_BEGIN, 21.2.1 and 24.5.10), and the
   callee reads them one by one while it allocates.  A finalizer that
   writes any slot (anything inside it returning two values) changes an
   argument of the call it interrupted.  So each finalizer of the module
   runs its work FN on O through this, which puts the whole array (and
   NVALUES) back.  FN must not leave non-locally (the interrupted frame
   would be unwound anyway). */
cl_object
eclsock_ecl_finalize(void (*fn)(cl_object), cl_object o)
{
  const cl_env_ptr env = ecl_process_env();
  cl_object saved[ECL_MULTIPLE_VALUES_LIMIT];
  cl_index n = env->nvalues;
  memcpy(saved, env->values, sizeof saved);
  fn(o);
  memcpy(env->values, saved, sizeof saved);
  env->nvalues = n;
  return saved[0];
}

/* -- Soft and hard flushes ----------------------------------------------- */

/* ECL calls force-output after every newline of terpri (write-line,
   format's ~%, print), after prin1/write/pprint of any object and after
   fresh-line; on a socket each would be a send and a TCP segment, and with
   Nagle's algorithm the second small segment of an answer waits for the
   peer's delayed acknowledgement (40 ms).  Those flushes are soft: the
   output stays buffered (and held by the flusher).  Explicit ones
   (CL:FORCE-OUTPUT, CL:FINISH-OUTPUT, a host's C code) are hard and send
   at once: the manual promises it.

   ECL reaches the stream's force_output from all of them through
   ecl_force_output, which (in the builds we know) ends in a tail call, so
   the return address of our force_output lies in the function that asked
   for the flush: ecl_terpri, ecl_prin1, cl_write ... or cl_force_output,
   cl_finish_output.  Rather than trust names (a static ECL has none, LTO
   renames them), the module calibrates at load: it drives ECL's own entry
   points on a probe stream whose force_output records its return address,
   and keeps the addresses the printer and newline functions flush from
   (SOFT) and those of force-output and finish-output (HARD).  A flush from
   any other address is hard.  When the two sets meet (no tail call: every
   flush returns into ecl_force_output itself) or nothing was recorded,
   the rule cannot tell them apart and every flush sends (mode
   EVERY_FLUSH).  ECLSOCK_FLUSH_MODE=every in the environment forces that
   mode (to test it). */
#define SITE_MAX 32
static const void *soft_sites[SITE_MAX], *hard_sites[SITE_MAX];
static int n_soft, n_hard;
static int flush_mode = ECLSOCK_FLUSH_EVERY;
static const void *probe_ra;

static void
probe_force_output(cl_object s)
{
  (void)s;
  probe_ra = __builtin_return_address(0);
}

static void
add_site(const void **set, int *n, const void *ra)
{
  int i;
  for (i = 0; i < *n; i++)
    if (set[i] == ra)
      return;
  if (*n < SITE_MAX)
    set[(*n)++] = ra;
}

/* Run (FN ,@ARGS PROBE) as Lisp calls it: the flush it makes, if any, is
   recorded in SET. */
static int
probe(cl_object fn, cl_object args, cl_object stream, const void **set, int *n)
{
  probe_ra = NULL;
  cl_apply(2, fn, ecl_append(args, ecl_list1(stream)));
  if (!probe_ra)
    return 0;
  add_site(set, n, probe_ra);
  return 1;
}

static cl_object
sym(const char *name)
{
  return ecl_make_symbol(name, "CL");
}

static void
calibrate(void)
{
  static struct ecl_file_ops ops;
  const char *env = getenv("ECLSOCK_FLUSH_MODE");
  cl_object s, one = ecl_make_fixnum(1), str;
  int fd, i, j, soft = 0, hard = 0;
  if (env && !strcmp(env, "every"))
    return;                     /* forced: every flush sends */
  if (eclsock_os_open_null(&fd))
    return;
  s = ecl_make_file_stream_from_fd(ecl_make_constant_base_string("flush probe", -1),
                                   fd, ecl_smm_output, 8, ECL_STREAM_DEFAULT_FORMAT,
                                   ecl_make_keyword("DEFAULT"));
  si_set_finalizer(s, ECL_NIL);
  eclsock_ecl_own_ops(s, &ops);
  ops.force_output = probe_force_output;
  str = ecl_make_constant_base_string("x", -1);
  /* the flushes ECL makes by itself */
  soft += probe(sym("TERPRI"), ECL_NIL, s, soft_sites, &n_soft);
  soft += probe(sym("WRITE-LINE"), ecl_list1(str), s, soft_sites, &n_soft);
  (void)cl_write_char(2, ECL_CODE_CHAR('x'), s);
  soft += probe(sym("FRESH-LINE"), ECL_NIL, s, soft_sites, &n_soft);
  soft += probe(sym("PRINT"), ecl_list1(one), s, soft_sites, &n_soft);
  soft += probe(sym("PRIN1"), ecl_list1(one), s, soft_sites, &n_soft);
  soft += probe(sym("PRINC"), ecl_list1(one), s, soft_sites, &n_soft);
  soft += probe(sym("PPRINT"), ecl_list1(one), s, soft_sites, &n_soft);
  soft += probe(sym("WRITE"), cl_list(2, one, ecl_make_keyword("STREAM")), s,
                soft_sites, &n_soft);
  probe_ra = NULL;              /* (format s "~D~%" 1): the stream first */
  cl_funcall(4, sym("FORMAT"), s, ecl_make_constant_base_string("~D~%", -1), one);
  if (probe_ra) { add_site(soft_sites, &n_soft, probe_ra); soft++; }
  /* the explicit ones */
  hard += probe(sym("FORCE-OUTPUT"), ECL_NIL, s, hard_sites, &n_hard);
  hard += probe(sym("FINISH-OUTPUT"), ECL_NIL, s, hard_sites, &n_hard);
  eclsock_ecl_generic_close(s);
  (void)eclsock_os_close(fd);
  if (!soft || hard < 2)
    return;
  for (i = 0; i < n_soft; i++)
    for (j = 0; j < n_hard; j++)
      if (soft_sites[i] == hard_sites[j])
        return;                 /* cannot tell them apart */
  flush_mode = ECLSOCK_FLUSH_CALL_SITE;
}

/* The kind of the flush whose force_output returns to RA. */
int
eclsock_ecl_flush_site(const void *ra)
{
  int i;
  if (flush_mode == ECLSOCK_FLUSH_CALL_SITE)
    for (i = 0; i < n_soft; i++)
      if (soft_sites[i] == ra)
        return ECLSOCK_SITE_SOFT;
  return ECLSOCK_SITE_HARD;
}

/* The rule in force: ECLSOCK_FLUSH_CALL_SITE or ECLSOCK_FLUSH_EVERY. */
int
eclsock_ecl_flush_mode(void)
{
  return flush_mode;
}

void
eclsock_ecl_init(void)
{
  cl_object t;
  int fd;
  if (generic_close_fn)
    return;
  /* A template stream on a throwaway descriptor: once closed, its close
     operation is ECL's generic_close. */
  if (eclsock_os_open_null(&fd))
    FEerror("ecl-sock: cannot open /dev/null", 0);
  t = ecl_make_file_stream_from_fd(ecl_make_constant_base_string("template", -1),
                                   fd, ecl_smm_io, 8, ECL_STREAM_BINARY, ECL_NIL);
  si_set_finalizer(t, ECL_NIL);
  t->stream.ops->close(t);
  generic_close_fn = t->stream.ops->close;
  calibrate();
}
