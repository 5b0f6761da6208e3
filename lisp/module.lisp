;;;; module.lisp - last file of the module: announce it.
;;;;
;;;; (require :sock) finds sock.fas in ECL's SYS: directory; PROVIDE makes a
;;;; second REQUIRE a no-op.

(in-package "ECLSOCK")

(pushnew :ecl-sock *features*)
(provide "SOCK")
