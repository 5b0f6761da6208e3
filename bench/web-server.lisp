;;;; web-server.lisp - the Hunchentoot server of `make bench`'s web
;;;; workloads (bench/run-web-bench).
;;;;
;;;; Owns: one Hunchentoot easy-acceptor on 127.0.0.1 (kernel-chosen port,
;;;; written to $PORTFILE) answering GET /hello with "hello world", under
;;;; MODE:
;;;;   "contrib"          ECL's sb-bsd-sockets, as usocket.asd asks for it
;;;;   "contrib-nodelay"  the same, TCP_NODELAY set by hand on the
;;;;                      listening socket (accepted ones inherit it)
;;;;   "ecl-sock"         ecl-sock's SB-BSD-SOCKETS face loaded first
;;;;   "sbcl"             SBCL itself (run by sbcl, not ecl)
;;;; The libraries are Debian's, loaded with ASDF, unchanged.  Stops by
;;;; itself after $LIFETIME seconds (default 600) or when killed.
;;;; Must not: change Hunchentoot or usocket, or set any option in any mode
;;;; but contrib-nodelay.
(defun web-getenv (name)
  #+ecl (ext:getenv name) #+sbcl (sb-ext:posix-getenv name))
(defun web-quit (code)
  #+ecl (ext:quit code) #+sbcl (sb-ext:exit :code code :abort t))
(setf *debugger-hook*
      (lambda (c h) (declare (ignore h))
        (format *error-output* "~&web-server: ~A~%" c) (web-quit 1)))
(when (equal (web-getenv "MODE") "ecl-sock")
  (load (web-getenv "SOCK_FAS") :verbose nil)
  (load (web-getenv "SOCK_BSD_FAS") :verbose nil))
(require :asdf)
(pushnew :hunchentoot-no-ssl *features*)
(let ((*compile-verbose* nil) (*load-verbose* nil) (*compile-print* nil))
  (handler-bind ((warning #'muffle-warning))
    (asdf:load-system "hunchentoot")))
(hunchentoot:define-easy-handler (hello :uri "/hello") ()
  (setf (hunchentoot:content-type*) "text/plain")
  "hello world")
;;; GET /gc: a full collection, asked by run-web-bench before it counts
;;; instructions, so that each count starts from the same heap
(hunchentoot:define-easy-handler (collect :uri "/gc") ()
  #+ecl (ext:gc t) #+sbcl (sb-ext:gc :full t)
  (setf (hunchentoot:content-type*) "text/plain")
  "collected")
(let ((a (make-instance 'hunchentoot:easy-acceptor :address "127.0.0.1" :port 0
                        :access-log-destination nil :message-log-destination nil)))
  (hunchentoot:start a)
  (when (equal (web-getenv "MODE") "contrib-nodelay")
    (setf (sb-bsd-sockets:sockopt-tcp-nodelay
           (usocket:socket (hunchentoot::acceptor-listen-socket a)))
          t))
  (with-open-file (o (web-getenv "PORTFILE") :direction :output :if-exists :supersede)
    (format o "~D~%" (usocket:get-local-port (hunchentoot::acceptor-listen-socket a))))
  (sleep (parse-integer (or (web-getenv "LIFETIME") "600")))
  (web-quit 0))
