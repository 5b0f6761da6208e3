;;;; test-latency.lisp - line-oriented programs do not stall, and every
;;;; flush guarantee holds.
;;;;
;;;; ECL's TERPRI (so WRITE-LINE, FORMAT's ~%, PRINT) calls FORCE-OUTPUT
;;;; after every newline.  ecl-sock joins those flushes with what follows
;;;; and holds output at most 2 ms (the manual's bound); explicit
;;;; FORCE-OUTPUT / FINISH-OUTPUT, CLOSE, a blocking read and SOCKET-STATUS
;;;; send at once.  These tests check what a peer sees: the multi-line
;;;; answer that used to stall 40 ms per answer (Nagle's algorithm against
;;;; the peer's delayed acknowledgement, with TCP_NODELAY both on, the
;;;; default, and off), lines that arrive while their writer waits on a
;;;; mutex or sleeps, and the content of interleaved traffic.  The bounds
;;;; are functional with wide margins (seconds, where the mechanism works
;;;; in milliseconds), not timings.  Loopback only.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "TEST-LATENCY" (:use "CL" "SOCKET" "HARNESS"))
(in-package "TEST-LATENCY")

;;; ------------------------------------------------------------------
;;; Helpers

(eval-when (:compile-toplevel)     ; WITH-SERVER, WITH-PAIR (expanded here)
  (load (merge-pathnames "pairs.lisp" *compile-file-truename*) :verbose nil))

(defun seconds-since (t0)
  (/ (- (get-internal-real-time) t0) internal-time-units-per-second 1.0))

(defun arrives (stream &optional (seconds 5))
  "True when input arrives on STREAM within SECONDS."
  (eq (socket-status (cons stream :input) seconds) :input))

(defun answer-in-lines (s)
  "The tutorial server: read a request line, answer in 4 lines (WRITE-LINE,
FORMAT ~%, PRINT-free), then wait for the next request."
  (loop for request = (read-line s nil nil)
        while request
        do (write-line "HTTP/1.0 200 OK" s)
           (format s "Content-Length: ~D~%" (length request))
           (write-line "" s)
           (write-line request s)
           (force-output s)))

(defun requests (c n)
  "Send N requests on C, read the 4-line answers; the seconds it took and
whether every answer was right."
  (let ((t0 (get-internal-real-time))
        (ok t))
    (dotimes (i n)
      (format c "GET /~D~%" i)
      (force-output c)
      (let ((lines (loop repeat 4 collect (read-line c nil nil))))
        (unless (equal lines (list "HTTP/1.0 200 OK"
                                   (format nil "Content-Length: ~D"
                                           (length (format nil "GET /~D" i)))
                                   ""
                                   (format nil "GET /~D" i)))
          (setf ok nil))))
    (values (seconds-since t0) ok)))

(defun stall-check (nodelay)
  (with-pair (c s)
    (unless (eq nodelay :default)
      (socket-options c :tcp-nodelay nodelay)
      (socket-options s :tcp-nodelay nodelay))
    (let ((server (spawn "answers" (lambda () (answer-in-lines s)))))
      (multiple-value-bind (seconds ok) (requests c 50)
        (format t "~&  50 requests of 4-line answers (tcp-nodelay ~S): ~,3F s~%"
                nodelay seconds)
        (is ok "every answer complete and in order")
        ;; a 40 ms stall per answer makes this 2 s and more
        (is (< seconds 1.0) "50 requests finish well under a second"))
      (close c)
      (join server))))

(defun pending (s)
  "Octets S holds that its peer has not been sent yet."
  (eclsock::%stream-pending-output s))

;;; ------------------------------------------------------------------
;;; The stall

;;; The flush rule in force (issue 20): printed, and checked against the
;;; environment that can force the fallback.  Under :EVERY-FLUSH ECL's own
;;; flushes send at once, so the tests that show them joined do not apply.
(format t "~&  flush mode: ~S~%" (flush-mode))

(defmacro when-flushes-held (&body body)
  `(if (eq (flush-mode) :every-flush)
       (format t "~&  not run: flush mode :EVERY-FLUSH sends every flush (no joining to see)~%")
       (progn ,@body)))

(deftest flush-mode-as-configured ()
  (if (equal (ext:getenv "ECLSOCK_FLUSH_MODE") "every")
      (is (eq (flush-mode) :every-flush) "ECLSOCK_FLUSH_MODE=every forces the fallback")
      (is (member (flush-mode) '(:call-site :every-flush)) "a known mode")))

(deftest four-line-answers-do-not-stall ()
  (stall-check :default))

(deftest four-line-answers-do-not-stall-with-nagle ()
  ;; with Nagle's algorithm on, only joining the lines into one send
  ;; avoids the 40 ms wait for the delayed acknowledgement
  (when-flushes-held (stall-check nil)))

(deftest answers-without-force-output ()
  ;; the server never calls FORCE-OUTPUT: its read of the next request
  ;; pushes the answer first
  (when-flushes-held
  (with-pair (c s)
    (socket-options s :tcp-nodelay nil)
    (let ((server (spawn "answers"
                         (lambda ()
                           (loop for r = (read-line s nil nil)
                                 while r
                                 do (write-line "one" s)
                                    (write-line "two" s))))))
      (let ((t0 (get-internal-real-time)))
        (dotimes (i 50)
          (write-line "q" c)
          (force-output c)
          (is (equal (list (read-line c) (read-line c)) '("one" "two"))))
        (is (< (seconds-since t0) 1.0) "50 exchanges well under a second"))
      (close c)
      (join server)))))

;;; ------------------------------------------------------------------
;;; Flush guarantees

(deftest tcp-nodelay-on-by-default-and-settable ()
  (with-pair (c s)
    (is (eq (socket-options c :tcp-nodelay) t) "connected: on")
    (is (eq (socket-options s :tcp-nodelay) t) "accepted: on")
    (is (eq (socket-options c :tcp-nodelay nil) t) "setting returns the old value")
    (is (eq (socket-options c :tcp-nodelay) nil) "and reads back the truth")))

(deftest explicit-flushes-send-at-once ()
  (with-pair (c s)
    (dolist (write (list (lambda () (write-line "a" c))
                         (lambda () (format c "b ~D~%" 2))
                         (lambda () (write-string "c" c))
                         (lambda () (write-char #\Newline c))
                         (lambda () (print 'd c))
                         (lambda () (prin1 42 c))))
      (dolist (flush (list #'force-output #'finish-output))
        (funcall write)
        (funcall flush c)
        (is (zerop (pending c)) "nothing left after an explicit flush")))
    (is (arrives s))))

(deftest newline-flushes-are-joined ()
  ;; ECL's own flush after WRITE-LINE / ~% / PRINT holds the output (seen
  ;; held at least once in ten tries: a try the scheduler stalls past the
  ;; 2 ms bound sees it sent)
  (when-flushes-held
    (with-pair (c s)
      (dolist (write (list (lambda () (write-line "a" c))
                           (lambda () (format c "b ~D~%" 2))
                           (lambda () (print 'd c))))
        (is (loop repeat 10
                  thereis (progn (funcall write)
                                 (prog1 (plusp (pending c))
                                   (force-output c))))
            "a newline's flush holds the output")))))

(deftest close-sends-at-once ()
  (with-pair (c s)
    (write-line "last words" c)
    (write-string "no newline" c)
    (close c)
    (is (equal (read-line s nil nil) "last words"))
    (is (equal (read-line s nil nil) "no newline"))
    (is (null (read-line s nil nil)))))

(deftest socket-status-pushes-first ()
  (with-pair (c s)
    (write-line "ping" c)
    (socket-status (cons c :input) 0)
    (is (zerop (pending c)) "socket-status sent the pending line")
    (is (equal (read-line s) "ping"))))

(deftest blocking-read-pushes-first ()
  ;; CLISP's REPL-server pattern: print the answer, then read the next form
  (with-pair (c s)
    (socket-options s :tcp-nodelay nil)
    (let ((server (spawn "repl"
                         (lambda ()
                           (let ((*package* (find-package "TEST-LATENCY")))
                             (loop for form = (read s nil :eof)
                                   until (eq form :eof)
                                   do (print (eval form) s)))))))
      (dotimes (i 20)
        (format c "(+ ~D 1)~%" i)
        (force-output c)
        (is (eql (read c) (1+ i))))
      (close c)
      (join server))))

(defun held-line-arrives (wait release)
  "Write a line, then WAIT (a function of no arguments that blocks until
RELEASE is called) without any flush: the peer must get the line while the
writer still waits."
  (with-pair (c s)
    (let* ((writer (spawn "writer" (lambda () (write-line "held" c) (funcall wait))))
           (got (arrives s 5)))
      (is got "the line arrives while its writer waits")
      (is (mp:process-active-p writer) "its writer was still waiting")
      (funcall release)
      (when got
        (is (equal (read-line s) "held")))
      (join writer))))

(deftest held-line-arrives-while-writer-waits-on-mutex ()
  (let ((lock (mp:make-lock)))
    (mp:get-lock lock)
    (held-line-arrives (lambda () (mp:with-lock (lock)))
                       (lambda () (mp:giveup-lock lock)))))

(deftest held-line-arrives-while-writer-sleeps ()
  (let ((done nil))
    (held-line-arrives (lambda () (loop until done repeat 1000 do (sleep 0.01)))
                       (lambda () (setf done t)))))

(deftest dropped-stream-output-arrives ()
  ;; a stream the program drops without CLOSE: its held line still goes
  (let ((srv (socket-server 0 :interface "127.0.0.1")))
    (unwind-protect
         (let ((s nil))
           (let ((c (socket-connect (socket-server-port srv) "127.0.0.1")))
             (write-line "dropped" c))
           (setf s (socket-accept srv :timeout 5))
           (unwind-protect
                (progn
                  (is (arrives s 5))
                  (is (equal (read-line s nil nil) "dropped")))
             (close s)))
      (socket-server-close srv))))

;;; ------------------------------------------------------------------
;;; Content under the flusher: nothing lost, doubled or reordered

(deftest interleaved-writes-arrive-intact ()
  ;; a writer that mixes soft flushes, pauses (so the flusher sends
  ;; pieces), explicit flushes and a thread allocating (GC) meanwhile
  (with-pair (c s)
    (let* ((n 20000)
           (gc (spawn "garbage" (lambda () (dotimes (i 200000) (make-list 20)))))
           (writer (spawn "writer"
                          (lambda ()
                            (dotimes (i n)
                              (format c "line ~D~%" i)
                              (case (mod i 997)
                                (0 (sleep 0.005))
                                (1 (force-output c))))
                            (close c)))))
      (let ((bad (loop for i from 0
                       for line = (read-line s nil nil)
                       while line
                       count (not (equal line (format nil "line ~D" i)))
                       into wrong
                       finally (return (+ wrong (abs (- i n)))))))
        (is (zerop bad) "every line once, in order"))
      (join writer)
      (join gc))))

(deftest many-closes-beside-the-flusher ()
  ;; streams closed right after a held write, while the flusher may be
  ;; sending: every peer gets its line and then end of file
  (let ((srv (socket-server 0 :interface "127.0.0.1"))
        (ok 0))
    (unwind-protect
         (dotimes (i 200)
           (let* ((c (socket-connect (socket-server-port srv) "127.0.0.1"))
                  (s (socket-accept srv :timeout 5)))
             (write-line (princ-to-string i) c)
             (when (oddp i) (sleep 0.001))
             (close c)
             (when (and (equal (read-line s nil nil) (princ-to-string i))
                        (null (read-line s nil nil)))
               (incf ok))
             (close s)))
      (socket-server-close srv))
    (is (= ok 200) (format nil "~D of 200 peers got their line" ok))))
