;;;; port.lisp - the PORT package: CLOCC PORT's network and process names.
;;;;
;;;; (Filled in by the PORT issue.)

(in-package "ECLSOCK")
