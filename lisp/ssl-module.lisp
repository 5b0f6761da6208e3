;;;; ssl-module.lisp - ssl.fas: (require :ssl) as in Allegro.
;;;;
;;;; Owns: the SSL module name only.  Allegro code loads its TLS functions
;;;; with (require :ssl); in ecl-sock they live in sock.fas (SOCKET
;;;; package, lisp/ssl.lisp), so this module requires SOCK and provides SSL.
;;;; Must not: define anything itself.

(require :sock)
(provide "SSL")
