;;;; harness.lisp - loads the test harness (harness-core.lisp) compiled to
;;;; native code: every script and test file loads this file.
;;;;
;;;; Owns: where the compiled harness lives ($TEST_BUILDDIR, else /tmp) and
;;;;   when it is compiled again (harness-core.lisp is newer, or another ECL).
;;;; Must not: hold harness code (harness-core.lisp does).
;;;;
;;;; Why compiled: ECL (21.2.1 and 24.5.10) passes the arguments of a call
;;;; from compiled code to an interpreted (bytecoded) function in the
;;;; calling thread's values array, and the interpreted function reads them
;;;; one by one while it allocates; a GC finalizer run by one of those
;;;; allocations may overwrite them.  ECL's own finalizer of a dropped
;;;; EXT:EXTERNAL-PROCESS does (it returns two values), at every GC while the
;;;; child runs: a test (compiled) calling an interpreted SPAWN then passed
;;;; it NIL for its function, about once in 10,000 threads.  Compiled to
;;;; compiled calls pass their arguments in C.  The manual's internals
;;;; chapter has the details ("Finalizers and ECL's values array").

(let* ((source (merge-pathnames "harness-core.lisp" *load-truename*))
       (dir (or (ext:getenv "TEST_BUILDDIR") "/tmp"))
       (fas (format nil "~A/harness-core-~A.fas" dir
                    (substitute #\- #\Space (lisp-implementation-version)))))
  (unless (and (probe-file fas)
               (>= (file-write-date fas) (file-write-date source)))
    ;; test files start two at a time: compile under a name of our own,
    ;; then rename (atomic), so that no process loads a half-written file
    (let ((tmp (format nil "~A/harness-core-~D.fas" dir (ext:getpid))))
      ;; another process may make the directory at the same moment
      (handler-case (ensure-directories-exist tmp)
        (file-error () (ensure-directories-exist tmp)))
      (handler-bind ((warning #'muffle-warning))
        (unless (compile-file source :output-file tmp :verbose nil :print nil)
          (error "harness.lisp: ~A does not compile" source)))
      (rename-file tmp fas :if-exists :supersede)))
  (load fas :verbose nil))
