;;;; pg-client.lisp - the Postmodern client of `make bench-pg`
;;;; (bench/run-pg-bench), against the throwaway cluster that script starts.
;;;;
;;;; Owns: loading Postmodern (Debian's, unchanged, ASDF, compiled natively:
;;;;   by ECL's C compiler, by SBCL's compiler) under MODE:
;;;;   "contrib"          ECL's sb-bsd-sockets, required before Postmodern
;;;;                      (cl-postgres uses it when its package exists)
;;;;   "contrib-nodelay"  the same, TCP_NODELAY set by hand on each socket
;;;;                      cl-postgres connects (an :AFTER method of the
;;;;                      contrib's SOCKET-CONNECT, in this file)
;;;;   "ecl-sock"         ecl-sock's SB-BSD-SOCKETS face loaded first
;;;;   "sbcl"             SBCL itself (run by sbcl, not ecl)
;;;; then runs the workloads of bench/pg-work.lisp (compiled natively into
;;;; the cache too), which print the numbers.  With PG_COMPILE_ONLY set, it
;;;; only loads and compiles (run-pg-bench's untimed warm-up).
;;;; ASDF's compiled files: XDG_CACHE_HOME (set by run-pg-bench, one tree
;;;; for every mode, keyed by implementation by ASDF), except Postmodern's
;;;; own tree, which goes to $PG_CACHE/<face>/: cl-postgres chooses its
;;;; socket code at compile time, so the faces' compiled files differ.
;;;; Must not: change Postmodern or set a socket option in any mode but
;;;; contrib-nodelay; time the compile.
(defun pg-getenv (name)
  #+ecl (ext:getenv name) #+sbcl (sb-ext:posix-getenv name))
(defun pg-quit (code)
  (finish-output)
  #+ecl (ext:quit code) #+sbcl (sb-ext:exit :code code :abort t))
(setf *debugger-hook*
      (lambda (c h) (declare (ignore h))
        (format *error-output* "~&pg-client: ~A~%" c) (pg-quit 1)))
(defvar *mode* (pg-getenv "MODE"))
(if (equal *mode* "ecl-sock")
    (progn (load (pg-getenv "SOCK_FAS") :verbose nil)
           (load (pg-getenv "SOCK_BSD_FAS") :verbose nil))
    (require :sb-bsd-sockets))
(require :asdf)
(defvar *face* (cond ((equal *mode* "ecl-sock") "ecl-sock")
                  ((member *mode* '("contrib" "contrib-nodelay") :test #'equal) "contrib")
                  (t *mode*)))
(asdf:initialize-output-translations
 `(:output-translations
   ("/usr/share/common-lisp/source/postmodern/"
    ,(format nil "~A/~A/postmodern/" (pg-getenv "PG_CACHE") *face*))
   :inherit-configuration))
(let ((*compile-verbose* nil) (*load-verbose* nil) (*compile-print* nil))
  (handler-bind ((warning #'muffle-warning))
    (asdf:load-system "postmodern")))
(when (equal *mode* "contrib-nodelay")
  (defmethod sb-bsd-sockets:socket-connect :after
      ((s sb-bsd-sockets:inet-socket) &rest address)
    (declare (ignore address))
    (setf (sb-bsd-sockets:sockopt-tcp-nodelay s) t)))

;; the workloads, compiled natively too (once, into the cache)
(let* ((source (merge-pathnames "pg-work.lisp" *load-truename*))
       (fas (compile-file-pathname
             (format nil "~A/~A/pg-work.lisp" (pg-getenv "PG_CACHE") *face*))))
  (unless (and (probe-file fas) (>= (file-write-date fas) (file-write-date source)))
    (ensure-directories-exist fas)
    (let ((*compile-verbose* nil) (*compile-print* nil))
      (handler-bind ((warning #'muffle-warning))
        (compile-file source :output-file fas))))
  (load fas :verbose nil))
(when (pg-getenv "PG_COMPILE_ONLY") (pg-quit 0))
(pg-work:main)
(pg-quit 0)


