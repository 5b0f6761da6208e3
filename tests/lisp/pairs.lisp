;;;; pairs.lisp - WITH-SERVER and WITH-PAIR, the loopback fixtures the
;;;; SOCKET-face tests share.
;;;;
;;;; Owns: the two macros.  A test file loads this at compile time only
;;;; (see test-clisp.lisp's head), into its own package, which must use
;;;; SOCKET: the compiled test holds the expansions, so nothing is loaded
;;;; when it runs.
;;;; Must not: define a package or run anything at load time; be loaded by
;;;; the harness (children started by tests have no SOCKET package).

(defmacro with-server ((var &rest args) &body body)
  "BODY with VAR bound to (SOCKET-SERVER ,@ARGS), closed afterwards."
  `(let ((,var (socket-server ,@args)))
     (unwind-protect (progn ,@body)
       (socket-server-close ,var))))

(defmacro with-pair ((client server &key (host "127.0.0.1") connect accept (srv (gensym "SRV")))
                     &body body)
  "BODY with CLIENT connected to SERVER (the accepted end) over HOST.
CONNECT and ACCEPT are extra keyword arguments for each side; SRV names the
listening server, which stays open during BODY."
  `(with-server (,srv 0 :interface ,host)
     (let ((,client nil) (,server nil))
       (unwind-protect
            (progn
              (setf ,client (socket-connect (socket-server-port ,srv) ,host ,@connect)
                    ,server (socket-accept ,srv :timeout 5 ,@accept))
              ,@body)
         (when ,client (close ,client))
         (when ,server (close ,server))))))
