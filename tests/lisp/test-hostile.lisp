;;;; test-hostile.lisp - hostile input against every face: wrong types,
;;;; extreme integers, NULs, circular and improper lists, bad keywords.
;;;; Each call must end (bounded) in a value or a clear condition, never a
;;;; crash, a hang or a leaked descriptor.  Also: every exported function
;;;; returns its documented number of values, and a process under a low
;;;; descriptor limit survives streams dropped without CLOSE.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "TEST-HOSTILE" (:use "CL" "HARNESS"))
(in-package "TEST-HOSTILE")

(defun nul-string (text)
  "TEXT with a NUL inserted before its last character."
  (let ((n (length text)))
    (concatenate 'string (subseq text 0 (1- n)) (string (code-char 0))
                 (subseq text (1- n)))))

(defun circular (&rest items)
  (let ((l (copy-list items))) (setf (cdr (last l)) l) l))

(defun bounded (thunk &optional (seconds 5))
  "Run THUNK in its own thread for at most SECONDS.  Returns :VALUES and
the list of values, :ERROR and the condition, or :HUNG."
  (let* ((result nil)
         (p (mp:process-run-function
             "bounded"
             (lambda ()
               (setf result
                     (handler-case (list :values (multiple-value-list (funcall thunk)))
                       (error (e) (list :error e))
                       (storage-condition (e) (list :storage e))))))))
    (loop with deadline = (+ (get-internal-real-time)
                             (* seconds internal-time-units-per-second))
          for pause = 0.0002 then (min 0.01 (* pause 2))
          until (or result (> (get-internal-real-time) deadline))
          do (sleep pause))
    (cond (result (mp:process-join p) (values-list result))
          ;; not joined: a thread spinning in C may never take the kill
          (t (ignore-errors (mp:process-kill p))
             (if result (values-list result) :hung)))))

(defun report-text (condition)
  "CONDITION's report, printed as a debugger would (circular data shown with labels)."
  (let ((*print-circle* t) (*print-length* 50) (*print-level* 5))
    (ignore-errors (princ-to-string condition))))

(defmacro rejects (type form &optional (description (format nil "~S" form)))
  "FORM must signal a condition of TYPE within 5 s, with a report."
  `(multiple-value-bind (kind x) (bounded (lambda () ,form))
     (is (and (eq kind :error) (typep x ',type) (plusp (length (report-text x))))
         (format nil "~A gives ~S ~A" ,description kind
                 (if (eq kind :error) (report-text x) x)))
     x))

(defmacro with-fixture ((server port stream peer) &body body)
  "A loopback SERVER on PORT, a connected STREAM and its accepted PEER."
  `(let* ((,server (socket:socket-server 0 :interface "127.0.0.1" :backlog 16))
          (,port (socket:socket-server-port ,server))
          (,stream (socket:socket-connect ,port "127.0.0.1"))
          (,peer (socket:socket-accept ,server)))
     (declare (ignorable ,port ,peer))
     (unwind-protect (progn ,@body)
       (close ,stream) (close ,peer) (socket:socket-server-close ,server))))

;;; ------------------------------------------------------------------
;;; Defect 1: documented number of values, through MULTIPLE-VALUE-LIST

(defmacro values-count (n form)
  `(let ((vals (multiple-value-list ,form)))
     (is (= ,n (length vals)) (format nil "~S gives ~D value(s): ~S" ',form (length vals) vals))
     (dolist (v vals) (when (or (streamp v) (socket:socket-server-p v)) (ignore-errors (close-any v))))
     (first vals)))

(defun close-any (x)
  (cond ((socket:socket-server-p x) (socket:socket-server-close x))
        ((streamp x) (close x))
        ((typep x 'port:socket-server) (port:socket-server-close x))
        (t (ignore-errors (close x)))))

(deftest values-of-every-face ()
  (with-fixture (srv port s peer)
    ;; CLISP face
    (values-count 1 (socket:socket-connect port "127.0.0.1"))
    (values-count 1 (socket:socket-accept srv :timeout 5))
    (values-count 1 (socket:socket-connect port "127.0.0.1" :timeout 5))
    (values-count 1 (socket:socket-accept srv))
    (values-count 1 (socket:socket-server 0 :interface "127.0.0.1"))
    (values-count 1 (socket:socket-server-close (socket:socket-server 0 :interface "127.0.0.1")))
    (values-count 1 (socket:socket-server-host srv))
    (values-count 1 (socket:socket-server-port srv))
    (values-count 1 (socket:socket-wait srv 0))
    (values-count 2 (socket:socket-status s 0))
    (values-count 2 (socket:socket-status (list s srv) 0))
    (values-count 1 (socket:socket-stream-host s))
    (values-count 1 (socket:socket-stream-port s))
    (values-count 2 (socket:socket-stream-peer s t))
    (values-count 2 (socket:socket-stream-local s t))
    (values-count 1 (socket:socket-options s :so-keepalive))
    (values-count 2 (socket:socket-options s :so-keepalive :tcp-nodelay))
    (values-count 1 (socket:socket-stream-p s))
    (values-count 1 (socket:socket-server-p srv))
    (values-count 2 (ext:stream-handles s))
    (let ((u (format nil "~A/hostile-values.sock" (or (ext:getenv "TEST_BUILDDIR") "/tmp"))))
      (ignore-errors (delete-file u))
      (let ((l (socket:make-socket :connect :passive :address-family :file :local-filename u)))
        (unwind-protect
             (progn
               (values-count 1 (socket:make-socket :address-family :file :remote-filename u))
               (values-count 1 (socket:accept-connection l))
               (values-count 1 (socket:local-filename l)))
          (close l) (ignore-errors (delete-file u)))))
    ;; Allegro face
    (values-count 1 (socket:make-socket :remote-host "127.0.0.1" :remote-port port))
    (values-count 1 (socket:accept-connection (socket:make-socket :connect :passive :local-host "127.0.0.1")
                                              :wait nil))
    (values-count 1 (socket:local-host s))
    (values-count 1 (socket:local-port s))
    (values-count 1 (socket:remote-host s))
    (values-count 1 (socket:remote-port s))
    (values-count 1 (socket:socket-os-fd s))
    (values-count 1 (socket:socket-address-family s))
    (values-count 1 (socket:socket-format s))
    (values-count 1 (socket:socket-type s))
    (values-count 1 (socket:ipaddr-to-dotted #x7f000001))
    (values-count 4 (socket:ipaddr-to-dotted #x7f000001 :values t))
    (values-count 1 (socket:dotted-to-ipaddr "127.0.0.1"))
    (values-count 1 (socket:lookup-hostname "127.0.0.1"))
    (values-count 1 (socket:lookup-port 80))
    (values-count 1 (socket:dotted-address-p "127.0.0.1"))
    (values-count 1 (socket:ipaddr-equalp #x7f000001 #x7f000001))
    (let ((a (socket:make-socket :type :datagram :local-host "127.0.0.1"))
          (b (socket:make-socket :type :datagram :local-host "127.0.0.1")))
      (unwind-protect
           (progn
             (values-count 1 (socket:send-to a (make-array 3 :element-type '(unsigned-byte 8)
                                                              :initial-element 7)
                                             3 :remote-host "127.0.0.1"
                                               :remote-port (socket:local-port b)))
             (values-count 4 (socket:receive-from b 10)))
        (close a) (close b)))
    ;; PORT face
    (values-count 1 (port:open-socket "127.0.0.1" port))
    (values-count 1 (port:socket-accept srv :wait 5))
    (values-count 4 (port:socket-host/port s))
    (values-count 1 (port:socket-string s))
    (let ((ps (values-count 1 (port:open-socket-server))))
      (declare (ignore ps)))
    (let ((ps (port:open-socket-server)))
      (values-count 2 (port:socket-server-host/port ps))
      (port:socket-server-close ps))
    (values-count 1 (port:resolve-host-ipaddr "127.0.0.1"))
    (values-count 1 (port:ipaddr-to-dotted #x7f000001))
    (values-count 1 (port:dotted-to-ipaddr "127.0.0.1"))
    (values-count 2 (port:ipaddr-closure "127.0.0.1"))
    (values-count 1 (port:socket-service-port "http"))
    ;; the primitives the faces are made of
    (values-count 1 (eclsock::%connect "127.0.0.1" port nil 'character :default t))
    (close (socket:socket-accept srv))
    (values-count 1 (eclsock::%connect-from "127.0.0.1" port nil nil nil
                                            'character :default t))
    (close (socket:socket-accept srv))
    (let ((fd (values-count 1 (eclsock::%listen "127.0.0.1" 0 1))))
      (eclsock::%close-fd fd))
    (let ((fd (values-count 1 (eclsock::%datagram "127.0.0.1" 0 nil nil nil))))
      (eclsock::%close-fd fd))
    (let ((fd (values-count 1 (eclsock::%datagram-unix nil))))
      (eclsock::%close-fd fd))
    (values-count 1 (eclsock::%stream-host s))
    (values-count 1 (eclsock::%stream-port s))
    (values-count 1 (eclsock::%stream-buffered s))
    (values-count 1 (eclsock::%option-names))
    (values-count 1 (eclsock::%error-name 1))
    (values-count 3 (eclsock::%local-address (socket:socket-os-fd s)))))

;;; ------------------------------------------------------------------
;;; Defect 2: a NUL in any string that crosses into C

(deftest nul-in-strings-is-rejected ()
  (with-fixture (srv port s peer)
    (let ((host (nul-string "127.0.0.1"))
          (path (nul-string (format nil "~A/hostile-nul.sock"
                                    (or (ext:getenv "TEST_BUILDDIR") "/tmp")))))
      (rejects type-error (socket:socket-connect port host))
      (rejects type-error (socket:socket-server 0 :interface host))
      (rejects type-error (socket:make-socket :remote-host host :remote-port port))
      (rejects type-error (socket:make-socket :connect :passive :local-host host))
      (rejects type-error (socket:make-socket :remote-host "127.0.0.1" :remote-port port
                                              :local-host host))
      (rejects type-error (socket:make-socket :type :datagram :local-host host))
      (rejects type-error (socket:lookup-hostname host))
      (rejects type-error (socket:lookup-port (nul-string "http") "tcp"))
      (rejects type-error (socket:make-socket :connect :passive :address-family :file
                                              :local-filename path))
      (rejects type-error (socket:make-socket :address-family :file :remote-filename path))
      (rejects type-error (port:open-socket host port))
      (rejects type-error (port:resolve-host-ipaddr host))
      (let ((c (rejects type-error (socket:socket-connect port host))))
        (is (search "NUL" (report-text c)) "the report names the NUL")))))

;;; ------------------------------------------------------------------
;;; Defect 3: socket-status on circular and improper lists

(deftest socket-status-circular-and-improper ()
  (with-fixture (srv port s peer)
    (rejects type-error (socket:socket-status (circular s) 0))
    (rejects type-error (socket:socket-status (circular s srv) 0))
    (rejects type-error (socket:socket-status (circular s srv peer) 0))
    (rejects type-error (socket:socket-status (list* s srv 3) 0))
    (rejects type-error (socket:socket-status (list* s 3) 0))
    (rejects type-error (socket:socket-wait (circular srv) 0))
    (let ((vals (multiple-value-list (socket:socket-status (list s peer) 0))))
      (is (and (= 2 (length vals)) (= 2 (length (first vals))) (eql 2 (second vals)))
          (format nil "a proper list still works: ~S" vals)))))

;;; ------------------------------------------------------------------
;;; Defect 4: integer options are range-checked

(deftest option-ranges ()
  (with-fixture (srv port s peer)
    (rejects type-error (socket:socket-options s :so-linger (expt 10 12)))
    (rejects type-error (socket:socket-options s :so-linger (+ 5 (expt 2 32))))
    (rejects type-error (socket:socket-options s :so-linger -1))
    (rejects type-error (socket:socket-options s :so-rcvbuf -5))
    (rejects type-error (socket:socket-options s :so-sndbuf -5))
    (rejects type-error (socket:socket-options s :so-rcvbuf (expt 2 31)))
    (rejects type-error (socket:socket-options s :so-rcvtimeo 1d300))
    (rejects type-error (socket:socket-options s :so-sndtimeo (expt 10 30)))
    (rejects type-error (socket:set-socket-options s :receive-buffer-size -1))
    (is (null (socket:socket-options s :so-linger)) "linger unchanged by the rejected values")
    (socket:socket-options s :so-linger 7)
    (is (eql 7 (socket:socket-options s :so-linger)))
    (socket:socket-options s :so-rcvtimeo 2)
    (is (eql 2 (socket:socket-options s :so-rcvtimeo)))
    ;; a huge timeout is "wait", not a floating-point trap
    (is (socket:socket-stream-p (socket:socket-connect port "127.0.0.1" :timeout (expt 10 400)))
        "a bignum timeout")
    (close (socket:socket-accept srv))))

;;; ------------------------------------------------------------------
;;; Defect 5: empty Unix path, unknown make-socket keyword

(deftest empty-path-and-bad-keywords ()
  (rejects socket:socket-error
           (socket:make-socket :connect :passive :address-family :file :local-filename ""))
  (rejects socket:socket-error (socket:make-socket :address-family :file :remote-filename ""))
  (rejects socket:socket-error (socket:make-socket :type :datagram :address-family :file
                                                   :local-filename ""))
  (rejects program-error (socket:make-socket :bogus 1 :remote-host "127.0.0.1" :remote-port 1))
  (rejects program-error (socket:make-socket :connect :passive :local-host "127.0.0.1" :bogus 1)))

;;; ------------------------------------------------------------------
;;; Defect 6: out of descriptors, a GC runs the finalizers and the call is retried

(deftest emfile-runs-the-finalizers ()
  (let* ((srcdir (or (ext:getenv "TEST_SRCDIR") "tests"))
         (program
           (format nil "(let* ((srv (socket:socket-server 0 :interface \"127.0.0.1\" :backlog 600))
         (p (socket:socket-server-port srv)) (ok 0))
    (handler-case
        (dotimes (i 1000)
          (socket:socket-connect p \"127.0.0.1\")
          (socket:socket-accept srv)
          (port:open-socket \"127.0.0.1\" p)
          (socket:accept-connection srv)
          (incf ok))
      (error (e) (format t \"~~&error: ~~A~~%\" e)))
    (format t \"~~&cycles ~~D~~%\" ok) (finish-output) (ext:quit 0))"))
         (script (format nil "ulimit -n 256 && exec ~A -norc -load ~A/lisp/harness.lisp -eval \"(require :sock)\" -eval '~A'"
                         (or (ext:getenv "ECL") "ecl") srcdir program)))
    (let* ((out (with-output-to-string (o)
                  (ext:run-program "/bin/sh" (list "-c" script) :output o :error :output
                                                                :input nil)))
           (pos (search "cycles " out)))
      (is (not (search "error:" out)) out)
      (is (and pos (eql 1000 (parse-integer out :start (+ pos 7) :junk-allowed t)))
          (format nil "1000 cycles of 4 dropped descriptors under ulimit -n 256: ~A" out)))))

;;; ------------------------------------------------------------------
;;; Hostile sweep: every exported function of every face

(defparameter *bad-values*
  (list nil t -1 (expt 2 70) (- (expt 2 70)) 1d300 -0.5 #\x :bogus
        (nul-string "127.0.0.1") "" (circular 1 2) (list* 1 2 3) (vector 1 2)
        (make-hash-table)))

(defun face-functions ()
  "Every exported function (not macro) of SOCKET, PORT, EXCL and SB-BSD-SOCKETS
(when loaded), and our EXT and MP names."
  (let ((names '()))
    (dolist (pkg (remove nil (mapcar #'find-package '("SOCKET" "PORT" "EXCL" "SB-BSD-SOCKETS"))))
      (do-external-symbols (s pkg)
        (when (and (fboundp s) (not (macro-function s)) (not (special-operator-p s)))
          (pushnew s names))))
    (dolist (s '(ext:read-byte-sequence ext:write-byte-sequence ext:read-char-sequence
                 ext:write-char-sequence ext:stream-handles mp:wait-for-input-available))
      (pushnew s names))
    (sort names #'string< :key #'symbol-name)))

(defparameter *skip*
  ;; Documented to wait for another thread or for the user, or to start a
  ;; thread that calls its argument (an error there is that thread's own:
  ;; ECL opens its debugger), or to act on the whole process: no argument
  ;; makes them return sooner, so a bound proves nothing.
  '(port:process-wait port:process-wait-with-timeout port:show-processes
    port:y-or-n-p-timeout port:maybe-y-or-n-p port:process-yield
    port:make-process))

(defun argument-lists (stream server)
  (loop for v in *bad-values*
        collect (list v)
        collect (list v v)
        collect (list stream v)
        collect (list server v)
        collect (list stream v v)
        collect (list v :bogus v)))

(defun dispose (values)
  (dolist (v values)
    (cond ((socket:socket-server-p v) (socket:socket-server-close v))
          ((and (streamp v) (open-stream-p v)) (ignore-errors (close v)))
          ((typep v 'mp:process) (ignore-errors (mp:process-kill v))))))

(deftest hostile-sweep (:timeout 300)
  (let ((fds-before (progn (ext:gc t) (open-fd-count)))
        (calls 0) (errors 0))
    (dolist (f (face-functions))
      (unless (member f *skip*)
        (with-fixture (srv port s peer)
          ;; data waiting, so that reads and waits on S return at once
          (write-line "hello" peer) (finish-output peer)
          (let ((pending (socket:socket-connect port "127.0.0.1")))
            (dolist (args (argument-lists s srv))
              (incf calls)
              (when (ext:getenv "HOSTILE_TRACE")
                (let ((*print-circle* t)) (format t "~&~S~{ ~S~}~%" f args)) (finish-output))
              (multiple-value-bind (kind x) (bounded (lambda () (apply f args)) 5)
                (case kind
                  (:values (dispose x))
                  (:error (incf errors)
                   (is (plusp (length (report-text x)))
                       (format nil "(~S~{ ~S~}): a condition without a report" f args)))
                  (t (is nil (format nil "(~S~{ ~S~}) gives ~S ~A" f args kind
                                     (if (eq kind :storage) (report-text x) "")))))))
            (close pending)))))
    (ext:gc t) (ext:gc t)
    (let ((fds-after (open-fd-count)))
      (format t "~&  ~D hostile calls, ~D errors signalled; descriptors ~D before, ~D after~%"
              calls errors fds-before fds-after)
      (is (<= fds-after fds-before) "no descriptor leaked"))
    (is (> errors (/ calls 2)) "most hostile calls are rejected")))
