;;;; packages.lisp - every package ecl-sock defines or extends, in one place.
;;;;
;;;; SOCKET (nickname ACL-SOCKET) holds the public names: CLISP's socket API
;;;; and, beside it, Allegro's.  ECLSOCK is the implementation package: the
;;;; C primitives (%CONNECT, %ACCEPT ...) live there and the Lisp layer is
;;;; written in it.  EXT gets the CLISP names that CLISP socket code reaches
;;;; through EXT (EXT is not locked in ECL; we only add symbols to it).

(defpackage "SOCKET"
  (:use "CL")
  (:nicknames "ACL-SOCKET")
  (:documentation "Socket streams for ECL: CLISP's SOCKET API (and Allegro's names).")
  (:export
   ;; CLISP socket API
   "SOCKET-SERVER" "SOCKET-SERVER-CLOSE" "SOCKET-SERVER-HOST" "SOCKET-SERVER-PORT"
   "SOCKET-WAIT" "SOCKET-ACCEPT" "SOCKET-CONNECT" "SOCKET-STATUS"
   "SOCKET-STREAM-HOST" "SOCKET-STREAM-PORT" "SOCKET-STREAM-PEER"
   "SOCKET-STREAM-LOCAL" "SOCKET-STREAM-SHUTDOWN" "SOCKET-OPTIONS"
   ;; types and predicates
   "SOCKET-STREAM" "SOCKET-STREAM-P" "SOCKET-SERVER-P"
   ;; conditions
   "SOCKET-ERROR" "SOCKET-ERROR-CODE" "SOCKET-ERROR-ERRNO" "SOCKET-ERROR-SYSCALL"
   "SOCKET-ERROR-HOST" "SOCKET-ERROR-PORT" "SOCKET-ERROR-IDENTIFIER"
   "CONNECTION-REFUSED-ERROR" "CONNECTION-RESET-ERROR" "ADDRESS-IN-USE-ERROR"
   "ADDRESS-NOT-AVAILABLE-ERROR" "SOCKET-TIMEOUT-ERROR" "HOST-NOT-FOUND-ERROR"
   "NETWORK-UNREACHABLE-ERROR" "HOST-UNREACHABLE-ERROR"))

;;; CLISP names that live in EXT.  Interned and exported before anything
;;; refers to them; SOCKET re-exports STREAM-HANDLES (the same symbol).
(eval-when (:compile-toplevel :load-toplevel :execute)
  (let ((ext (find-package "EXT")))
    (dolist (name '("READ-BYTE-SEQUENCE" "WRITE-BYTE-SEQUENCE"
                    "READ-CHAR-SEQUENCE" "WRITE-CHAR-SEQUENCE"
                    "STREAM-HANDLES" "OS-ERROR" "OS-ERROR-CODE"))
      (export (intern name ext) ext))
    (let ((sh (find-symbol "STREAM-HANDLES" ext))
          (socket (find-package "SOCKET")))
      (import sh socket)
      (export sh socket))))

(defpackage "ECLSOCK"
  (:use "CL" "SOCKET")
  (:documentation "Implementation of ecl-sock: C primitives (%...) and the Lisp layer."))
