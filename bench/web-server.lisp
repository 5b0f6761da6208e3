;;;; web-server.lisp - the Hunchentoot server of `make bench`'s web
;;;; workloads (bench/run-web-bench).
;;;;
;;;; Owns: one Hunchentoot easy-acceptor on 127.0.0.1 (kernel-chosen port,
;;;; written to $PORTFILE) answering GET /hello with "hello world", over
;;;; MODE "contrib" (ECL's sb-bsd-sockets, as usocket.asd asks for it) or
;;;; "ecl-sock" (the SB-BSD-SOCKETS face loaded first).  The libraries are
;;;; Debian's, loaded with ASDF, unchanged.  Stops by itself after
;;;; $LIFETIME seconds (default 600) or when killed.
(setf *debugger-hook*
      (lambda (c h) (declare (ignore h))
        (format *error-output* "~&web-server: ~A~%" c) (ext:quit 1)))
(when (string= (ext:getenv "MODE") "ecl-sock")
  (load (ext:getenv "SOCK_FAS") :verbose nil)
  (load (ext:getenv "SOCK_BSD_FAS") :verbose nil))
(require :asdf)
(pushnew :hunchentoot-no-ssl *features*)
(let ((*compile-verbose* nil) (*load-verbose* nil))
  (handler-bind ((warning #'muffle-warning))
    (asdf:load-system "hunchentoot")))
(hunchentoot:define-easy-handler (hello :uri "/hello") ()
  (setf (hunchentoot:content-type*) "text/plain")
  "hello world")
(let ((a (make-instance 'hunchentoot:easy-acceptor :address "127.0.0.1" :port 0
                        :access-log-destination nil :message-log-destination nil)))
  (hunchentoot:start a)
  (with-open-file (o (ext:getenv "PORTFILE") :direction :output :if-exists :supersede)
    (format o "~D~%" (usocket:get-local-port (hunchentoot::acceptor-listen-socket a))))
  (sleep (parse-integer (or (ext:getenv "LIFETIME") "600")))
  (ext:quit 0))
