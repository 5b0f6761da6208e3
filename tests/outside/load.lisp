;;;; load.lisp - the one loader of outside libraries (Postmodern, cl+ssl,
;;;; Drakma, Hunchentoot, Swank ...) for the tests of `make check`.
;;;;
;;;; Owns: loading ecl-sock's face, then Debian's libraries through ASDF,
;;;;   unchanged, compiled by ECL's bytecodes compiler (.fasc) into a cache
;;;;   outside the build tree, keyed by ECL version and face:
;;;;   ${XDG_CACHE_HOME:-$HOME/.cache}/ecl-sock/<ECL version>/<face>/
;;;;   (cl-postgres chooses its socket code at compile time with
;;;;   FIND-PACKAGE, so a face's compiled files are not another's), so that
;;;;   make distcheck and later runs reuse them.  ECL_SOCK_OUTSIDE_CACHE
;;;;   names another root.  Prints how long loading took.
;;;; Must not: patch or configure the libraries; leave the bytecodes compiler
;;;;   installed (test files are compiled natively after it).
;;;;
;;;; Use: ecl -norc -load tests/lisp/harness.lisp -load tests/outside/load.lisp
;;;;   then (outside:load-systems :bsd "postmodern" ...).

(defpackage "OUTSIDE"
  (:use "CL")
  (:export "LOAD-SYSTEMS" "CACHE-DIRECTORY" "MISSING-SYSTEMS"))
(in-package "OUTSIDE")

(defun cache-root ()
  (let ((own (ext:getenv "ECL_SOCK_OUTSIDE_CACHE"))
        (xdg (ext:getenv "XDG_CACHE_HOME"))
        (home (ext:getenv "HOME")))
    (cond ((and own (plusp (length own))) (string-right-trim "/" own))
          ((and xdg (plusp (length xdg))) (format nil "~A/ecl-sock" (string-right-trim "/" xdg)))
          (t (format nil "~A/.cache/ecl-sock" (string-right-trim "/" (or home "/tmp")))))))

(defun cache-directory (face)
  "Where the compiled files of outside libraries go for FACE (:BSD ...)."
  (format nil "~A/~A/~(~A~)/" (cache-root)
          (substitute #\_ #\/ (substitute #\_ #\Space (lisp-implementation-version)))
          face))

(defun load-face (face)
  (ecase face
    (:bsd (require :sock-bsd))
    (:sock (require :sock))))

(defun missing-systems (&rest systems)
  "The systems among SYSTEMS (names) ASDF cannot find."
  (require :asdf)
  (remove-if (lambda (s) (funcall (find-symbol "FIND-SYSTEM" "ASDF") s nil)) systems))

(defun load-systems (face &rest systems)
  "Load ecl-sock's FACE, then SYSTEMS with ASDF, bytecode-compiled into
\(CACHE-DIRECTORY FACE).  Prints the time it took."
  (let ((start (get-internal-real-time)))
    (load-face face)
    (require :asdf)
    (let ((dir (cache-directory face)))
      (ensure-directories-exist dir)
      (funcall (find-symbol "INITIALIZE-OUTPUT-TRANSLATIONS" "ASDF")
               `(:output-translations (t (,dir)) :ignore-inherited-configuration))
      (ext:install-bytecodes-compiler)
      (unwind-protect
           (let ((*compile-verbose* nil) (*load-verbose* nil) (*compile-print* nil))
             (handler-bind ((warning #'muffle-warning))
               (dolist (s systems)
                 (funcall (find-symbol "LOAD-SYSTEM" "ASDF") s))))
        (ext:install-c-compiler))
      (format t "~&outside: loaded ~{~A~^, ~} (face ~(~A~), cache ~A) in ~,1F s~%"
              systems face dir
              (/ (- (get-internal-real-time) start) internal-time-units-per-second))
      (finish-output))))
