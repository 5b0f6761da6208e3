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
   "NETWORK-UNREACHABLE-ERROR" "HOST-UNREACHABLE-ERROR"
   ;; the poller, an ecl-sock extension (poller.lisp)
   "POLLER" "POLLER-P" "MAKE-POLLER" "POLLER-CLOSE" "WITH-POLLER" "POLLER-ADD"
   "POLLER-MODIFY" "POLLER-REMOVE" "POLLER-WAIT" "POLLER-TOUCH"
   ;; which flushes a socket stream holds, an ecl-sock extension (core.lisp)
   "FLUSH-MODE"
   ;; Allegro's socket API (SOCKET-CONNECT above is both: see clisp.lisp)
   "MAKE-SOCKET" "ACCEPT-CONNECTION" "WITH-PENDING-CONNECT" "SHUTDOWN"
   "SOCKET-CONTROL" "SET-SOCKET-OPTIONS" "SET-SOCKET-FORMAT" "SOCKET-OS-FD"
   "LOCAL-HOST" "LOCAL-PORT" "REMOTE-HOST" "REMOTE-PORT" "LOCAL-FILENAME"
   "REMOTE-FILENAME" "SOCKET-ADDRESS-FAMILY" "SOCKET-FORMAT" "SOCKET-TYPE"
   "SEND-TO" "RECEIVE-FROM" "IPADDR-TO-DOTTED" "DOTTED-TO-IPADDR"
   "IPADDR-TO-HOSTNAME" "LOOKUP-HOSTNAME" "LOOKUP-PORT" "DOTTED-ADDRESS-P"
   "IPV6-ADDRESS-P" "IPADDR-EQUALP" "*PRINT-HOSTNAME-IN-STREAM*"
   ;; Allegro's SSL API (lisp/ssl.lisp) and its conditions
   "MAKE-SSL-CLIENT-STREAM" "MAKE-SSL-SERVER-STREAM" "MAKE-SSL-CLIENT-CONTEXT"
   "MAKE-SSL-SERVER-CONTEXT" "SSL-DO-HANDSHAKE" "GET-SSL-PEER-CERTIFICATE"
   "GET-SSL-VERIFY-RESULT" "SSL-CONTEXT" "SSL-CONTEXT-P" "*SSL-FEATURES*"
   "X509-CERTIFICATE" "X509-CERTIFICATE-P" "X509-CERTIFICATE-VERSION"
   "X509-CERTIFICATE-SERIAL-NUMBER" "X509-CERTIFICATE-SUBJECT"
   "X509-CERTIFICATE-ISSUER" "X509-CERTIFICATE-NOT-BEFORE"
   "X509-CERTIFICATE-NOT-AFTER" "X509-CERTIFICATE-SUBJECT-ALT-NAME"
   "SSL-SOCKET-STREAM" "SSL-STREAM-P" "*SSL-HANDSHAKE-TIMEOUT*"
   "SSL-ERROR" "SSL-HANDSHAKE-ERROR" "SSL-HANDSHAKE-TIMEOUT-ERROR" "SSL-VERIFY-ERROR" "SSL-VERIFY-ERROR-REASON"
   "SSL-VERIFY-ERROR-RESULT" "SSL-CONFIGURATION-ERROR" "SSL-UNAVAILABLE-ERROR"
   "SSL-TRUNCATED-EOF" "SSL-TRUNCATED-EOF-STREAM"))

;;; CLISP names that live in EXT.  Interned and exported before anything
;;; refers to them; SOCKET re-exports STREAM-HANDLES (the same symbol).
(eval-when (:compile-toplevel :load-toplevel :execute)
  (let ((ext (find-package "EXT")))
    (dolist (name '("READ-BYTE-SEQUENCE" "WRITE-BYTE-SEQUENCE" "READ-BYTE-NO-HANG"
                    "READ-CHAR-SEQUENCE" "WRITE-CHAR-SEQUENCE"
                    "STREAM-HANDLES" "OS-ERROR" "OS-ERROR-CODE" "OS-STREAM-ERROR"))
      (export (intern name ext) ext))
    (let ((sh (find-symbol "STREAM-HANDLES" ext))
          (socket (find-package "SOCKET")))
      (import sh socket)
      (export sh socket))))

;;; Allegro keeps its socket condition in EXCL.  This EXCL holds only that
;;; class (the very symbol SOCKET:SOCKET-ERROR) and its three readers, so
;;; Allegro code that names them reads and runs; it is no more of Allegro.
;;; It must exist for such code to be read at all, so (FIND-PACKAGE "EXCL")
;;; is true after (require :sock): code that takes that for Allegro should
;;; test #+allegro instead (doc/allegro.texi, "Allegro errors").
(defpackage "EXCL"
  (:use)
  (:import-from "SOCKET" "SOCKET-ERROR")
  (:documentation "Allegro's names for socket conditions, and only those (ecl-sock).")
  (:export "SOCKET-ERROR" "STREAM-ERROR-IDENTIFIER" "STREAM-ERROR-CODE"
           "STREAM-ERROR-ACTION"))

;;; Allegro's MP names socket code uses that ECL's MP lacks (MP is not
;;; locked; these are new symbols, nothing of ECL's changes).
(eval-when (:compile-toplevel :load-toplevel :execute)
  (let ((mp (find-package "MP")))
    (dolist (name '("WITH-TIMEOUT" "WAIT-FOR-INPUT-AVAILABLE"))
      (export (intern name mp) mp))))

(defpackage "ECLSOCK"
  (:use "CL" "SOCKET")
  (:documentation "Implementation of ecl-sock: C primitives (%...) and the Lisp layer."))

;;; CLOCC's PORT: its network (net.lisp), process (proc.lisp) and
;;; condition (ext.lisp) names, so PORT code runs unchanged after
;;; (require :sock).  It uses only CL, as CLOCC's does; the code behind
;;; these names lives in ECLSOCK (lisp/port.lisp).  PORT's other ext.lisp
;;; and sys.lisp utilities (QUIT, GETENV, DEFSUBST, STRING-TOKENS ...) are
;;; not socket code and are left out; see doc/port.texi.
(defpackage "PORT"
  (:use "CL")
  (:nicknames "ORG.CONS.CLOCC/SDS/PORT")
  (:documentation "CLOCC PORT's network and process API, on ecl-sock and ECL's MP.")
  (:export
   ;; net.lisp: addresses
   "RESOLVE-HOST-IPADDR" "IPADDR-TO-DOTTED" "DOTTED-TO-IPADDR" "IPADDR-CLOSURE"
   "HOSTENT" "HOSTENT-NAME" "HOSTENT-ALIASES" "HOSTENT-ADDR-LIST" "HOSTENT-ADDR-TYPE"
   ;; net.lisp: sockets and servers
   "SOCKET" "OPEN-SOCKET" "SOCKET-HOST/PORT" "SOCKET-STRING" "SET-SOCKET-STREAM-FORMAT"
   "SOCKET-SERVER" "OPEN-SOCKET-SERVER" "SOCKET-ACCEPT" "SOCKET-SERVER-CLOSE"
   "SOCKET-SERVER-HOST/PORT"
   "SOCKET-SERVICE-PORT" "SERVENT" "SERVENT-NAME" "SERVENT-ALIASES" "SERVENT-PORT"
   "SERVENT-PROTO" "SERVENT-P"
   ;; net.lisp: conditions
   "NETWORK" "NET-PROC" "NET-HOST" "NET-PORT" "NET-MESG" "NET-ARGS"
   "TIMEOUT" "LOGIN" "NET-PATH"
   ;; ext.lisp: conditions
   "CODE" "CODE-PROC" "CODE-MESG" "CODE-ARGS" "CASE-ERROR" "NOT-IMPLEMENTED"
   ;; proc.lisp
   "+THREADS-P+" "MAKE-PROCESS" "PROCESS-WAIT" "PROCESS-WAIT-WITH-TIMEOUT"
   "WITH-TIMEOUT" "Y-OR-N-P-TIMEOUT" "MAYBE-Y-OR-N-P" "WITHOUT-SCHEDULING"
   "PROCESS-YIELD" "KILL-PROCESS" "INTERRUPT-PROCESS" "RESTART-PROCESS"
   "PROCESSP" "PROCESS-NAME" "PROCESS-ACTIVE-P" "PROCESS-WHOSTATE"
   "CURRENT-PROCESS" "ALL-PROCESSES" "SHOW-PROCESSES"
   "MAKE-LOCK" "GET-LOCK" "GIVEUP-LOCK" "WITH-LOCK"))
