;;;; harness-core.lisp - the test harness for ecl-sock's Lisp tests
;;;; (compiled to native code and loaded by harness.lisp, which says why).
;;;;
;;;; Owns: DEFTEST, IS, SIGNALS and running a test file (RUN-TEST-FILE:
;;;;   COMPILE-FILE to native code, each test under a watchdog, the final
;;;;   "N passed, N failed" line and the exit status; SKIP-TEST-FILE, 77);
;;;;   the hooks that make (require :sock), :sock-bsd and :ssl load the
;;;;   build tree's fas files ($SOCK_FAS, $SOCK_BSD_FAS, $SSL_FAS); the
;;;;   helpers tests share: threads (SPAWN, JOIN; a spawned thread's error
;;;;   fails its test; DROP-FROM-THREAD and FINALIZE-DROPPED for finalizer
;;;;   tests), descriptors
;;;;   (OPEN-FD-COUNT, FD-TABLE), octets (RANDOM-OCTETS, CHECKSUM) and child processes
;;;;   (START-PROGRAM, WAIT-FOR-LINE, FINISH-PROGRAM, START-EXAMPLE).
;;;; Must not: require :sock itself or hold socket code (it is also loaded
;;;;   into the child ECLs tests start, for its hooks); hold
;;;;   helpers only one test file uses; contact another host.
;;;;
;;;; Loaded, through harness.lisp, before each test file (tests/lisp/run-test,
;;;; tests/soak/run-soak).

(defpackage "HARNESS"
  (:use "CL")
  (:export "DEFTEST" "IS" "SIGNALS" "RUN-TEST-FILE" "*TEST-TIMEOUT*"
           "SPAWN" "JOIN" "THREAD-FAILED" "DROP-FROM-THREAD" "FINALIZE-DROPPED" "OPEN-FD-COUNT" "RANDOM-OCTETS" "CHECKSUM"
           "SKIP-TEST-FILE" "FD-TABLE"
           "PROGRAM" "PROGRAM-PROCESS" "PROGRAM-READER" "PROGRAM-OUTPUT"
           "START-PROGRAM" "WAIT-FOR-LINE" "FINISH-PROGRAM"
           "EXAMPLE-FILE" "EXAMPLE-COMMAND" "START-EXAMPLE" "*EXAMPLE-TIME-LIMIT*"))

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

;;; A spawned thread's error must fail the test that spawned it: SPAWN
;;; records each thread and how it ended; JOIN signals THREAD-FAILED for a
;;; thread that ended in error, unless the test asks for the error as a
;;; result (:ERROR-OK); and at the end of each test every error no test
;;; took that way fails the test, whether or not the thread was joined.

(define-condition thread-failed (error)
  ((name :initarg :name :reader thread-failed-name)
   (condition :initarg :condition :reader thread-failed-condition))
  (:report (lambda (c stream)
             (format stream "thread ~S failed: ~A: ~A" (thread-failed-name c)
                     (type-of (thread-failed-condition c)) (thread-failed-condition c))))
  (:documentation "Signalled by JOIN for a spawned thread that ended in error."))

(defstruct spawned
  "A thread started by SPAWN: its name, process, the test that started it
and how it ended: NIL while it runs (or when it was killed), (:VALUES list)
or (:ERROR condition).  CLAIMED when a JOIN took the error as a result."
  name process test outcome claimed)

(defvar *spawned* '() "The threads SPAWN started that were not checked yet (global: threads spawn too).")
(defvar *spawned-lock* (mp:make-lock :name "spawned"))
(defvar *current-test* nil "The name of the test running (global, for the threads it spawns).")

(defun spawn (name function)
  "Run FUNCTION in a new thread named NAME; JOIN waits for it.  The thread's
result (what MP:PROCESS-JOIN returns) is the list of FUNCTION's values, or
(:ERROR condition) when it signalled an error; an error also fails the test
unless a JOIN with :ERROR-OK took it."
  (let ((record (make-spawned :name name :test *current-test*)))
    (mp:with-lock (*spawned-lock*) (push record *spawned*))
    (setf (spawned-process record)
          (mp:process-run-function
           name (lambda ()
                  (handler-case
                      (let ((values (multiple-value-list (funcall function))))
                        (setf (spawned-outcome record) (list :values values))
                        values)
                    (error (e)
                      (setf (spawned-outcome record) (list :error e))
                      (list :error e))))))))

;; The collector is conservative: a pointer left in a live thread's stack
;; or values array keeps an object (and its descriptor) that the program
;; dropped.  Tests of finalizers make their garbage where no such pointer
;; can stay.
(defun drop-from-thread (function)
  "Call FUNCTION in a new thread and wait for the thread to end: what
FUNCTION made and dropped is referenced by no live thread afterwards (no
stale pointer in this thread's stack or values array)."
  (mp:process-join (mp:process-run-function "dropper" function))
  nil)

;; ... and a test counts what the finalizers closed with FINALIZE-DROPPED:
;; nearly all, not all, since a stale pointer anywhere in the process (the
;; collector scans stacks, registers and data conservatively) may keep a
;; few (fresh CI runs left 1 of 20 and 4 of 30 once each).
(defun finalize-dropped (table &key (rounds 40))
  "Collect garbage (at most ROUNDS times: a full GC, an allocation, 50 ms)
until this process has no more descriptors than in TABLE (an FD-TABLE taken
before the objects were made and dropped).  Returns how many more it still
has, and prints them when there are any."
  (flet ((new () (set-difference (fd-table) table :test #'equal)))
    ;; tables, not counts: OPEN-FD-COUNT also counts the descriptor that
    ;; lists /proc/self/fd, which FD-TABLE (reading the links after) does not
    (loop repeat rounds while (new)
          do (ext:gc t) (make-list 1000) (sleep 0.05))
    (let ((left (new)))
      (when left
        (format t "~&  ~D descriptor(s) of dropped objects not finalized: ~S~%"
                (length left) left))
      (length left))))

(defun find-spawned (process)
  (mp:with-lock (*spawned-lock*) (find process *spawned* :key #'spawned-process)))

(defun join (process &key error-ok)
  "Wait for PROCESS (made by SPAWN) and return the list of its function's
values.  When the thread ended in error: with ERROR-OK, return (:ERROR
condition) (the test then checks the error itself); else signal
THREAD-FAILED naming the thread and its error."
  (let ((result (mp:process-join process))
        (record (find-spawned process)))
    (let ((outcome (and record (spawned-outcome record))))
      (cond ((not (eq (first outcome) :error)) result)
            (error-ok (setf (spawned-claimed record) t) result)
            (t (error 'thread-failed :name (spawned-name record)
                                     :condition (second outcome)))))))

(defun spawned-failures (&optional seen)
  "Report lines for the spawned threads that ended in an error no JOIN took
(SEEN: a condition already reported), and forget every thread that ended."
  (mp:with-lock (*spawned-lock*)
    (let ((lines '()))
      (setf *spawned*
            (remove-if
             (lambda (r)
               (let ((outcome (spawned-outcome r)))
                 (when (and (eq (first outcome) :error) (not (spawned-claimed r))
                            (not (eq (second outcome) seen)))
                   (push (format nil "thread ~S~:[~; (of test ~:*~A, after it ended)~] failed: ~A: ~A"
                                 (spawned-name r)
                                 (and (not (eq (spawned-test r) *current-test*)) (spawned-test r))
                                 (type-of (second outcome)) (second outcome))
                         lines))
                 (or outcome (not (mp:process-active-p (spawned-process r))))))
             *spawned*))
      (nreverse lines))))

(ffi:clines "#include <stdio.h>" "#include <unistd.h>")

(defun fd-target (fd)
  "What descriptor FD of this process is (its /proc/self/fd link:
socket:[inode], pipe:[inode], anon_inode:[eventpoll], a path), or NIL."
  (ffi:c-inline (fd) (:int) :object
    "{ char p[64], t[256]; ssize_t n;
       snprintf(p, sizeof p, \"/proc/self/fd/%d\", #0);
       n = readlink(p, t, sizeof t - 1);
       @(return) = n < 0 ? ECL_NIL : ecl_make_simple_base_string(t, n); }"))

(defun fd-table ()
  "This process's descriptors: a list of (fd . what); a leak check shows
the SET-DIFFERENCE (:TEST #'EQUAL) of two."
  (loop for path in (ignore-errors (directory "/proc/self/fd/*" :resolve-symlinks nil))
        for fd = (parse-integer (pathname-name path) :junk-allowed t)
        for what = (and fd (fd-target fd))
        when what collect (cons fd what)))

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

;;; ------------------------------------------------------------------
;;; Child processes

(defstruct program
  "A child process started by START-PROGRAM and the lines it wrote so far."
  process (lines '()) (lock (mp:make-lock)) reader)

(defun program-output (p)
  "P's output lines so far (stdout and stderr), without ECL's \";;; Loading\" notes."
  (remove-if (lambda (l) (eql 0 (search ";;; Loading" l)))
             (mp:with-lock ((program-lock p)) (reverse (program-lines p)))))

(defun start-program (command args &key input)
  "Start COMMAND with ARGS (EXT:RUN-PROGRAM, not waiting); a thread collects
its output (stdout and stderr) by lines and closes the pipe at its end."
  (multiple-value-bind (stream status process)
      (ext:run-program command args :input input :output :stream :error :output :wait nil)
    (declare (ignore status))
    (let ((p (make-program :process process)))
      (setf (program-reader p)
            (mp:process-run-function
             "output reader"
             (lambda ()
               (ignore-errors
                (loop for line = (read-line stream nil)
                      while line
                      do (mp:with-lock ((program-lock p)) (push line (program-lines p)))))
               (ignore-errors (close stream)))))
      p)))

(defun wait-for-line (p text &optional (seconds 20))
  "The first output line of P containing TEXT, waiting up to SECONDS; NIL if none came."
  (loop repeat (* seconds 20)
        do (let ((line (find text (program-output p) :test #'search)))
             (when line (return line))
             (sleep 0.05))))

(defun close-process-streams (process)
  "Close the pipes ECL keeps for PROCESS (else they stay open until GC)."
  (dolist (f '(ext:external-process-input ext:external-process-output
               ext:external-process-error-stream))
    (let ((s (ignore-errors (funcall f process))))
      (when (streamp s) (ignore-errors (close s))))))

(defun finish-program (p &optional (seconds 30))
  "Wait up to SECONDS for P to exit by itself: its exit code, or :KILLED
when it had to be killed (SIGKILL)."
  (let ((process (program-process p)))
    (loop repeat (* seconds 20)
          do (when (eq (ext:external-process-status process) :exited)
               (mp:process-join (program-reader p))
               (close-process-streams process)
               (return-from finish-program
                 (nth-value 1 (ext:external-process-status process))))
             (sleep 0.05))
    (ext:terminate-process process t)
    (ext:external-process-wait process t)
    (mp:process-join (program-reader p))
    (close-process-streams process)
    :killed))

(defvar *example-time-limit* nil
  "NIL, or seconds: START-EXAMPLE then runs the example under `timeout -k 5
N`, so that it ends even if the test process dies (stop it with SIGTERM, which
`timeout` passes on: a SIGKILL would leave the example running).")

(defun example-file (name)
  "The path of examples/NAME in the source tree."
  (format nil "~A/../examples/~A" (or (ext:getenv "TEST_SRCDIR") "tests") name))

(defun example-command (script args)
  "The command and arguments that run examples/SCRIPT with ARGS as a user
would (ecl -norc -shell), (require :sock) finding the build tree's sock.fas
through this file's hooks; under `timeout` when *EXAMPLE-TIME-LIMIT* says so."
  (let ((ecl (list* (or (ext:getenv "ECL") "ecl") "-norc"
                    "-load" (format nil "~A/lisp/harness.lisp"
                                    (or (ext:getenv "TEST_SRCDIR") "tests"))
                    "-shell" (example-file script) args)))
    (if *example-time-limit*
        (values "timeout" (list* "-k" "5" (princ-to-string *example-time-limit*) ecl))
        (values (first ecl) (rest ecl)))))

(defun start-example (script &rest args)
  "START-PROGRAM on examples/SCRIPT with ARGS (EXAMPLE-COMMAND)."
  (multiple-value-bind (command argv) (example-command script args)
    (start-program command argv)))

;;; ------------------------------------------------------------------
;;; Running a test file

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
    (setf *current-test* name)
    (handler-case (funcall function)
      (error (e) (setf error e)))
    (setf done t)
    (mp:process-join watchdog)
    (let ((threads (spawned-failures (and (typep error 'thread-failed)
                                          (thread-failed-condition error)))))
      (cond ((or error threads)
             (format t "~&FAIL ~A: ~@[~A~]~:[~;; ~]~{~A~^; ~}~%"
                     name error (and error threads) threads)
             nil)
            ((plusp *checks-failed*)
             (format t "~&FAIL ~A: ~D check(s) failed~%" name *checks-failed*) nil)
            (t (format t "~&PASS ~A~%" name) t)))))

(defun run-test-file (file)
  "Compile FILE natively, load it and run its tests; exit with the verdict."
  (let* ((dir (or (ext:getenv "TEST_BUILDDIR") "/tmp"))
         (out (format nil "~A/~A.fas" dir (pathname-name file)))
         )
    ;; global, not bound: the watchdog thread reads them
    (setf *passed* 0 *failed* 0)
    ;; A condition no handler takes, in any thread (a SEGMENTATION-VIOLATION
    ;; is no ERROR, so SPAWN's handler lets it through), fails the file: in
    ;; ECL's debugger a thread reads end of file from make's standard input
    ;; and the process then exits with status 0, which would pass the file.
    ;; EXT:*INVOKE-DEBUGGER-HOOK*: every thread sees its global value (ECL's
    ;; toplevel binds *DEBUGGER-HOOK* in the main thread only).
    (setf ext:*invoke-debugger-hook*
          (lambda (condition hook)
            (declare (ignore hook))
            (format t "~&FAIL: ~A: ~A, unhandled in thread ~A~%~D passed, ~D failed~%"
                    (type-of condition) condition (mp:process-name mp:*current-process*)
                    *passed* (1+ *failed*))
            (hard-exit 4)))
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
    ;; a thread that failed after its test ended, and after the last test
    (setf *current-test* nil)
    (dolist (line (spawned-failures))
      (format t "~&FAIL: ~A~%" line)
      (incf *failed*))
    (format t "~&~D passed, ~D failed~%" *passed* *failed*)
    (finish-output)
    (ext:quit (if (zerop *failed*) 0 1))))
