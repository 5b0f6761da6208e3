/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * eclcompat.c - every use of ECL's internals, in one place, each with what
 * it relies on.
 *
 * Owns: making an ECL fd stream from a descriptor (ECL's own constructor,
 * which no installed header declares), giving a stream a private copy of
 * its dispatch table, ECL's generic close (static in ECL: taken from a
 * closed template stream), and telling the flushes ECL makes by itself
 * (terpri, the printer) from explicit ones (by call site).
 * Must not: know the socket stream's struct or do any I/O of its own.
 */
#include "internal.h"
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

/* -- Soft and hard flushes ----------------------------------------------- */

/* ECL calls force-output after every newline of terpri (write-line,
   format's ~%, print), after prin1/princ/write of any object and after
   fresh-line; on a socket each would be a send and a TCP segment, and with
   Nagle's algorithm the second small segment of an answer waits for the
   peer's delayed acknowledgement (40 ms).  Those flushes are soft: the
   output stays buffered (and held by the flusher).  A flush is hard, and
   sends at once, when it comes from CL:FORCE-OUTPUT or CL:FINISH-OUTPUT
   (ECL's are one C function each, which call the stream's force_output
   through a tail call of ecl_force_output, so the return address of our
   force_output lies inside them), or from anything we cannot name (C code
   of a host that calls ecl_force_output, for one).  Call sites are named
   once with dladdr and cached.  When ecl_force_output is not a tail call
   (another build of ECL), the site is ecl_force_output itself: then a
   flush right after write-char of a newline is soft, any other hard. */
#define SITE_CACHE 16
static uintptr_t site_cache[SITE_CACHE];   /* (address << 2) | kind */
static unsigned site_next;

static const char *const soft_callers[] = {
  "ecl_terpri", "cl_terpri", "cl_write_line", "cl_fresh_line", "ecl_print",
  "cl_print", "ecl_prin1", "cl_prin1", "ecl_princ", "cl_princ", "cl_pprint",
  "cl_write", "ecl_princ_char", "ecl_write_string", NULL
};

int
eclsock_ecl_flush_site(const void *ra)
{
  uintptr_t key = (uintptr_t)ra << 2;
  const void *start;
  const char *name;
  int i, kind = ECLSOCK_SITE_HARD;
  const cl_env_ptr env = ecl_process_env();
  for (i = 0; i < SITE_CACHE; i++) {
    uintptr_t e = __atomic_load_n(&site_cache[i], __ATOMIC_ACQUIRE);
    if ((e & ~(uintptr_t)3) == key)
      return (int)(e & 3);
  }
  ecl_disable_interrupts_env(env);   /* dladdr takes the loader's lock */
  name = eclsock_os_code_name(ra, &start);
  ecl_enable_interrupts_env(env);
  if (name && start == (const void *)ecl_force_output) {
    kind = ECLSOCK_SITE_NEWLINE;
  } else if (name) {
    for (i = 0; soft_callers[i]; i++)
      if (!strcmp(name, soft_callers[i]))
        kind = ECLSOCK_SITE_SOFT;
  }
  i = (int)(__atomic_fetch_add(&site_next, 1, __ATOMIC_RELAXED) % SITE_CACHE);
  __atomic_store_n(&site_cache[i], key | (uintptr_t)kind, __ATOMIC_RELEASE);
  return kind;
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
}
