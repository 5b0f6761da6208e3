;;;; swank-bench-server.lisp - the Swank server of `make bench-swank`
;;;; (bench/run-swank-bench).
;;;;
;;;; Owns: Swank (Debian's cl-swank, unchanged, loaded with ASDF; Debian's
;;;;   swank-loader compiles it natively where ASDF's output translations
;;;;   say: run-swank-bench gives each mode its XDG_CACHE_HOME) on 127.0.0.1 at
;;;;   a kernel-chosen port written to $PORTFILE, style :spawn, under MODE:
;;;;   "contrib"   ECL's sb-bsd-sockets, as Swank's ecl.lisp requires it
;;;;   "ecl-sock"  ecl-sock's SB-BSD-SOCKETS face loaded first (so Swank's
;;;;               (require 'sockets) finds it already there)
;;;;   "sbcl"      SBCL itself (run by sbcl, not ecl)
;;;; Stops by itself after $LIFETIME seconds (default 600) or when killed.
;;;; Must not: change Swank or set a socket option.
(defun sb-getenv (name)
  #+ecl (ext:getenv name) #+sbcl (sb-ext:posix-getenv name))
(defun sb-quit (code)
  (finish-output)
  #+ecl (ext:quit code) #+sbcl (sb-ext:exit :code code :abort t))
(setf *debugger-hook*
      (lambda (c h) (declare (ignore h))
        (format *error-output* "~&swank-bench-server: ~A~%" c) (sb-quit 1)))
(when (equal (sb-getenv "MODE") "ecl-sock")
  (load (sb-getenv "SOCK_FAS") :verbose nil)
  (load (sb-getenv "SOCK_BSD_FAS") :verbose nil))
(require :asdf)
(let ((*compile-verbose* nil) (*load-verbose* nil) (*compile-print* nil))
  (handler-bind ((warning #'muffle-warning))
    (asdf:load-system "swank")))
(setf (symbol-value (find-symbol "*LOG-EVENTS*" "SWANK")) nil)
(let ((port (funcall (find-symbol "CREATE-SERVER" "SWANK")
                     :interface "127.0.0.1" :port 0 :dont-close t :style :spawn)))
  (with-open-file (o (sb-getenv "PORTFILE") :direction :output :if-exists :supersede)
    (format o "~D~%" port))
  (sleep (parse-integer (or (sb-getenv "LIFETIME") "600")))
  (sb-quit 0))
