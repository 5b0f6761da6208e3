;;;; allegro.lisp - Allegro CL's socket API in the SOCKET package.
;;;;
;;;; (Filled in by the Allegro-API issue: make-socket, accept-connection,
;;;; accessors, address helpers, datagrams, Unix-domain sockets, EXCL.)

(in-package "ECLSOCK")
