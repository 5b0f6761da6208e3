;;;; harness.lisp - the test harness for ecl-sock's Lisp tests.
;;;;
;;;; Loaded before each test file.  It makes (require :sock) load the
;;;; build tree's sock.fas ($SOCK_FAS), compiles the test file with
;;;; COMPILE-FILE (native code) and runs its DEFTESTs in order, each under
;;;; a watchdog, then prints "N passed, N failed" and exits non-zero when
;;;; anything failed.

(defpackage "HARNESS"
  (:use "CL")
  (:export "DEFTEST" "IS" "SIGNALS" "RUN-TEST-FILE" "*TEST-TIMEOUT*"
           "SPAWN" "JOIN" "OPEN-FD-COUNT" "RANDOM-OCTETS" "CHECKSUM"
           "SKIP-TEST-FILE"))

(in-package "HARNESS")

(let ((fas (ext:getenv "SOCK_FAS"))
      (bsd (ext:getenv "SOCK_BSD_FAS")))
  (when fas
    (push (lambda (module)
            (when (string-equal (string module) "SOCK")
              (load fas :verbose nil)
              t))
          ext:*module-provider-functions*))
  (when bsd
    (push (lambda (module)
            (when (string-equal (string module) "SOCK-BSD")
              (load bsd :verbose nil)
              t))
          ext:*module-provider-functions*)))

;;; (require :ssl) loads the build tree's ssl.fas ($SSL_FAS), as ECL would
;;; load the installed one from SYS:.
(let ((fas (ext:getenv "SSL_FAS")))
  (when fas
    (push (lambda (module)
            (when (string-equal (string module) "SSL")
              (load fas :verbose nil)
              t))
          ext:*module-provider-functions*)))

(defvar *tests* '())
(defvar *test-timeout* 120 "Seconds one test may take before it counts as hung.")
(defvar *checks-failed* 0)
(defvar *passed* 0 "Tests of this file that passed so far.")
(defvar *failed* 0 "Tests of this file that failed so far.")

(defun hard-exit (code)
  "End the process with exit status CODE, from any thread.  ECL's EXT:QUIT
called from a thread other than the main one ends the process with status 0
(ECL 21.2.1), which would make a hung test file pass; SI:EXIT does not."
  (finish-output)
  (si:exit code))

(defun skip-test-file (reason)
  "Skip every test of the file being loaded, saying why: Automake counts the
file as SKIP (exit status 77)."
  (format t "~&SKIP: ~A~%0 passed, 0 failed, ~D skipped~%" reason (length *tests*))
  (hard-exit 77))

(defmacro deftest (name (&key (timeout '*test-timeout*)) &body body)
  "Define a test: it passes when BODY returns without error and every IS in it held."
  `(progn
     (setf *tests* (remove ',name *tests* :key #'first))
     (setf *tests* (append *tests* (list (list ',name (lambda () ,@body) ,timeout))))
     ',name))

(defmacro is (form &optional description)
  "Check that FORM is true; report it when not."
  `(unless ,form
     (incf *checks-failed*)
     (format t "~&  check failed: ~@[~A: ~]~S~%" ,description ',form)))

(defmacro signals (type &body body)
  "Check that BODY signals a condition of TYPE; return the condition."
  (let ((c (gensym)))
    `(let ((,c (handler-case (progn ,@body nil)
                 (,type (e) e))))
       (is ,c ,(format nil "signals ~S" type))
       ,c)))

(defun spawn (name function)
  "Run FUNCTION in a new thread; JOIN returns its values (or its error)."
  (mp:process-run-function
   name (lambda ()
          (handler-case (multiple-value-list (funcall function))
            (error (e) (list :error e))))))

(defun join (process)
  "Wait for PROCESS (made by SPAWN) and return its result list."
  (mp:process-join process))

(defun open-fd-count ()
  "How many descriptors this process has open.  Listed again when one
closes while DIRECTORY lists them (ECL then signals a file error; a
finalizer or another thread may close one at any moment)."
  (loop repeat 50
        do (handler-case
               (return (length (directory "/proc/self/fd/*" :resolve-symlinks nil)))
             (file-error () (sleep 0.01)))
        finally (return (length (directory "/proc/self/fd/*" :resolve-symlinks nil)))))

(defun random-octets (n &optional (state (make-random-state t)))
  (let ((v (make-array n :element-type '(unsigned-byte 8))))
    (dotimes (i n v) (setf (aref v i) (random 256 state)))))

(defun checksum (vector &optional (start 0) (end (length vector)) (sum 0))
  "A position-sensitive checksum of octets (Adler-32 style)."
  (declare (type (simple-array (unsigned-byte 8) (*)) vector) (fixnum start end))
  (let ((a (logand sum #xffff)) (b (ash sum -16)))
    (declare (fixnum a b))
    (loop for i from start below end
          do (setf a (mod (+ a (aref vector i)) 65521)
                   b (mod (+ b a) 65521)))
    (logior (ash b 16) a)))

(defun run-one (name function timeout)
  (let* ((done nil)
         (watchdog (mp:process-run-function
                    "watchdog"
                    (lambda ()
                      (loop repeat (* 10 timeout)
                            until done do (sleep 0.1))
                      (unless done
                        (format t "~&FAIL ~A: hung for more than ~D s~%~D passed, ~D failed~%"
                                name timeout *passed* (1+ *failed*))
                        (hard-exit 3)))))
         (*checks-failed* 0)
         (error nil))
    (handler-case (funcall function)
      (error (e) (setf error e)))
    (setf done t)
    (mp:process-join watchdog)
    (cond (error
           (format t "~&FAIL ~A: ~A~%" name error) nil)
          ((plusp *checks-failed*)
           (format t "~&FAIL ~A: ~D check(s) failed~%" name *checks-failed*) nil)
          (t (format t "~&PASS ~A~%" name) t))))

(defun run-test-file (file)
  "Compile FILE natively, load it and run its tests; exit with the verdict."
  (let* ((dir (or (ext:getenv "TEST_BUILDDIR") "/tmp"))
         (out (format nil "~A/~A.fas" dir (pathname-name file)))
         )
    ;; global, not bound: the watchdog thread reads them
    (setf *passed* 0 *failed* 0)
    ;; another test file may make the directory at the same moment
    (handler-case (ensure-directories-exist out)
      (file-error () (ensure-directories-exist out)))
    (handler-bind ((warning #'muffle-warning))
      (let ((fas (compile-file file :output-file out :verbose nil :print nil)))
        (unless fas
          (format t "~&FAIL: ~A does not compile~%0 passed, 1 failed~%" file)
          (ext:quit 1))
        (load fas :verbose nil)))
    (dolist (test *tests*)
      (if (apply #'run-one test) (incf *passed*) (incf *failed*))
      (finish-output))
    (format t "~&~D passed, ~D failed~%" *passed* *failed*)
    (finish-output)
    (ext:quit (if (zerop *failed*) 0 1))))
