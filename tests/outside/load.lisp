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
;;;;   names another root.  Prints how long loading took.  Exception: a file
;;;;   that needs ECL's C compiler is also compiled natively (once, into the
;;;;   cache) and loaded over its bytecodes: CFFI callbacks (cl+ssl's
;;;;   bio.lisp, ffi.lisp, context.lisp: ECL 21.2.1's bytecoded callbacks
;;;;   crash when C calls them, and cl+ssl reports every OpenSSL error
;;;;   through one) and inline C left out under :ECL-BYTECMP (usocket's ECL
;;;;   backend, without which WAIT-FOR-INPUT is undefined).
;;;; Must not: patch or configure the libraries; leave the bytecodes compiler
;;;;   installed (test files are compiled natively after it).
;;;;
;;;; Use: ecl -norc -load tests/lisp/harness.lisp -load tests/outside/load.lisp
;;;;   then (outside:load-systems :bsd "postmodern" ...).

(defpackage "OUTSIDE"
  (:use "CL")
  (:export "LOAD-SYSTEMS" "LOAD-SYSTEMS-BEFORE-FACE" "CACHE-DIRECTORY"
           "MISSING-SYSTEMS"))
(in-package "OUTSIDE")

(require :asdf)

(defun needs-c-compiler-p (component)
  "True when COMPONENT's source needs ECL's C compiler: it defines a CFFI
callback (a line starting with \"(cffi:defcallback\" or \"(defcallback\"),
or it has inline C (FFI:C-INLINE, FFI:CLINES) that it leaves out under
:ECL-BYTECMP (usocket's ECL backend: its WAIT-FOR-INPUT)."
  (let ((file (asdf:component-pathname component)))
    (and file (probe-file file)
         (with-open-file (in file :external-format :utf-8)
           (loop with inline-c = nil and bytecmp = nil
                 for line = (read-line in nil)
                 while line
                 do (when (or (eql 0 (search "(cffi:defcallback " line :test #'char-equal))
                              (eql 0 (search "(defcallback " line :test #'char-equal)))
                      (return t))
                    (when (or (search "(ffi:c-inline" line :test #'char-equal)
                              (search "(ffi:clines" line :test #'char-equal))
                      (setf inline-c t))
                    (when (search "ecl-bytecmp" line :test #'char-equal)
                      (setf bytecmp t))
                 finally (return (and inline-c bytecmp)))))))

(defvar *overlaid* (make-hash-table :test 'equal) "Files already overlaid.")

(defun overlay-callbacks-natively (systems)
  "Compile natively (into the cache, once) and load over the bytecodes each
file of SYSTEMS and their dependencies that needs ECL's C compiler."
  (let ((seen (make-hash-table :test 'equal)))
    (labels ((walk (c)
               (typecase c
                 (asdf:cl-source-file
                  (when (needs-c-compiler-p c) (overlay c)))
                 (asdf:parent-component
                  (mapc #'walk (asdf:component-children c)))))
             (system (name)
               (let ((s (asdf:find-system name nil)))
                 (when (and s (not (gethash (asdf:component-name s) seen)))
                   (setf (gethash (asdf:component-name s) seen) t)
                   (dolist (d (asdf:system-depends-on s))
                     (when (stringp d) (system d)))
                   (walk s))))
             (overlay (c)
               (unless (gethash (asdf:component-pathname c) *overlaid*)
                 (setf (gethash (asdf:component-pathname c) *overlaid*) t)
                 (overlay-file c)))
             (overlay-file (c)
               (let* ((source (asdf:component-pathname c))
                      (fas (asdf:apply-output-translations
                            (make-pathname :name (format nil "~A-native" (pathname-name source))
                                           :type "fas" :defaults source))))
                 (unless (and (probe-file fas) (>= (file-write-date fas) (file-write-date source)))
                   (ensure-directories-exist fas)
                   (let ((*package* (find-package "CL-USER")))
                     (compile-file source :output-file fas :verbose nil :print nil)))
                 (load fas :verbose nil))))
      (mapc #'system systems))))

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
  (load-in-order face t systems))

(defun load-systems-before-face (face &rest systems)
  "As LOAD-SYSTEMS, but FACE is loaded after SYSTEMS (for systems whose
compiled files do not depend on the face: the other loading order)."
  (load-in-order face nil systems))

(defun load-in-order (face face-first systems)
  (let ((start (get-internal-real-time)))
    (when face-first (load-face face))
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
      (let ((*compile-verbose* nil) (*load-verbose* nil) (*compile-print* nil))
        (handler-bind ((warning #'muffle-warning))
          (overlay-callbacks-natively systems)))
      (unless face-first (load-face face))
      (format t "~&outside: loaded ~{~A~^, ~} (face ~(~A~), cache ~A) in ~,1F s~%"
              systems face dir
              (/ (- (get-internal-real-time) start) internal-time-units-per-second))
      (finish-output))))
