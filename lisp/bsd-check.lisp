;;;; bsd-check.lisp - first file of sock-bsd.fas: refuse to load the
;;;; SB-BSD-SOCKETS face over ECL's contrib.
;;;;
;;;; Owns: the check, in a file of its own because a compiled file's
;;;; symbols are interned before its first form runs: bsd.lisp's would
;;;; already clash with the contrib's package.  Must not: name any
;;;; SB-BSD-SOCKETS symbol.

(let ((pkg (find-package "SB-BSD-SOCKETS")))
  (when (and pkg (not (find-symbol "%ECL-SOCK-FACE" pkg)))
    (error "ECL's contrib sb-bsd-sockets is already loaded in this image, so
ecl-sock's SB-BSD-SOCKETS face cannot be loaded over it.  Load the face first:
put (require :sock-bsd) (or ASDF's \"ecl-sock-bsd\") before anything requires
sb-bsd-sockets or loads usocket, in a fresh image.")))
