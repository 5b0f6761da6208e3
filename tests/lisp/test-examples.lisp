;;;; test-examples.lisp - the examples, started as a user starts them
;;;; (ecl -norc -shell examples/X.lisp ...), driven over loopback by their
;;;; own clients, by curl --http0.9, by a CLISP client and by hostile
;;;; clients; each server stops by itself after --max connections.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "TEST-EXAMPLES" (:use "CL" "HARNESS"))
(in-package "TEST-EXAMPLES")

;;; ------------------------------------------------------------------
;;; Running programs

(defun builddir () (or (ext:getenv "TEST_BUILDDIR") "/tmp"))
(defun scratch (name) (format nil "~A/examples-scratch/~A" (builddir) name))

(defun listening-port (p)
  "The port in P's \"listening on HOST:PORT\" line."
  (let ((line (wait-for-line p "listening on ")))
    (assert line () "no \"listening on\" line; output: ~S" (program-output p))
    (values (parse-integer line :start (1+ (position #\: line :from-end t)))
            line)))

(defun run (command args &key input (seconds 30))
  "Run COMMAND to the end: its output lines and exit code."
  (let ((p (start-program command args :input input)))
    (let ((code (finish-program p seconds)))
      (values (program-output p) code))))

(defun run-example (script &rest args)
  (multiple-value-bind (command argv) (example-command script args)
    (run command argv)))

(defun write-file (name text)
  (ensure-directories-exist name)
  (with-open-file (out name :direction :output :if-exists :supersede)
    (write-string text out))
  name)

(defun crlf (&rest lines)
  (format nil "~{~A~C~C~}" (loop for l in lines nconc (list l #\Return #\Linefeed))))

;;; ------------------------------------------------------------------
;;; Raw clients

(defun exchange (port request &key (read t))
  "Send REQUEST (a string) to 127.0.0.1:PORT and return everything the
server sends back, as a string of Latin-1 characters (CRs kept)."
  (with-open-stream (s (port:open-socket "127.0.0.1" port t))
    (write-sequence (map '(vector (unsigned-byte 8)) #'char-code request) s)
    (finish-output s)
    (when read
      (let ((out (make-string-output-stream)))
        (loop for b = (read-byte s nil) while b do (write-char (code-char b) out))
        (get-output-stream-string out)))))

(defun safe-exchange (port request)
  "EXCHANGE, but a connection the server resets counts as :RESET."
  (handler-case (exchange port request)
    (socket:socket-error () :reset)))

;;; ------------------------------------------------------------------
;;; HTTP/0.9 server and client

(defparameter *hello* (format nil "Hello, world.~%Second line: ünïcödé.~%"))
(defparameter *secret* "TOP SECRET: never served")

(defun make-root ()
  "A document root with files, a subdirectory, a symbolic link inside and
one pointing out at a secret beside the root."
  (let ((root (scratch "www/")))
    (ensure-directories-exist root)
    (write-file (scratch "secret.txt") (format nil "~A~%" *secret*))
    (write-file (scratch "www/hello.txt") *hello*)
    (write-file (scratch "www/sub/index.html") (format nil "<p>index</p>~%"))
    (write-file (scratch "www/.hidden") (format nil "~A~%" *secret*))
    (dolist (link '(("link-out" "../secret.txt") ("link-in.txt" "hello.txt")))
      (let ((path (scratch (format nil "www/~A" (first link)))))
        (when (probe-file path) (delete-file path))
        (ext:run-program "ln" (list "-sf" (second link) path) :output nil :error nil)))
    root))

(defparameter *hello-response*
  (crlf "Hello, world." "Second line: ünïcödé."))

(defun utf8-latin1 (string)
  "STRING's UTF-8 octets, each as a character (what EXCHANGE returns)."
  (with-output-to-string (out)
    (flet ((put (&rest octets) (dolist (o octets) (write-char (code-char o) out))))
      (loop for ch across string
            for c = (char-code ch)
            do (cond ((< c #x80) (put c))
                     ((< c #x800) (put (logior #xc0 (ash c -6)) (logior #x80 (logand c #x3f))))
                     (t (put (logior #xe0 (ash c -12)) (logior #x80 (logand (ash c -6) #x3f))
                             (logior #x80 (logand c #x3f)))))))))

(defun curl (port path &rest options)
  (multiple-value-bind (lines code)
      (run "curl" (append (list "-sS" "--http0.9" "--max-time" "10") options
                          (list (format nil "http://127.0.0.1:~D~A" port path))))
    (values lines code)))

(defvar *connections* 0 "Connections made to the server under test.")

(defun http (port request)
  (incf *connections*)
  (safe-exchange port request))

(defun refused-p (answer)
  (member answer (list (crlf "400 Bad Request") (crlf "404 Not Found") :reset) :test #'equal))

(deftest http-server-end-to-end (:timeout 240)
  (let* ((root (make-root))
         (*connections* 0)
         (max 44)
         (server (start-example "http-server.lisp" "0" root "--max" (princ-to-string max)
                                "--idle" "1"))
         (port (listening-port server))
         (good (utf8-latin1 *hello-response*)))
    (unwind-protect
         (progn
           (is (search "listening on 127.0.0.1:" (wait-for-line server "listening on"))
               "binds loopback by default")
           ;; the example client
           (multiple-value-bind (lines code)
               (progn (incf *connections*)
                      (run-example "http-client.lisp" "127.0.0.1" (princ-to-string port) "/hello.txt"))
             (is (eql code 0))
             (is (member "Hello, world." lines :test #'string=))
             (is (member "Second line: ünïcödé." lines :test #'string=)))
           ;; requests by hand: with and without the version, CRLF lines
           (is (equal (http port (crlf "GET /hello.txt HTTP/0.9" "")) good))
           (is (equal (http port (crlf "GET /hello.txt")) good) "bare HTTP/0.9 request")
           (is (equal (http port (crlf "GET /link-in.txt HTTP/1.0" "Host: x" "")) good)
               "a symbolic link that stays inside the root")
           (is (equal (http port (crlf "GET /sub/ HTTP/1.0" "")) (crlf "<p>index</p>")))
           ;; curl as the client
           (multiple-value-bind (lines code) (progn (incf *connections*) (curl port "/hello.txt"))
             (is (eql code 0) "curl --http0.9")
             (is (equal lines (list (format nil "Hello, world.~C" #\Return)
                                    (format nil "Second line: ünïcödé.~C" #\Return)))))
           (multiple-value-bind (lines code)
               (progn (incf *connections*) (curl port "/../secret.txt" "--path-as-is"))
             (is (eql code 0))
             (is (equal lines (list (format nil "400 Bad Request~C" #\Return))) "curl, traversal"))
           ;; errors
           (is (equal (http port (crlf "GET /missing.txt HTTP/0.9" "")) (crlf "404 Not Found")))
           (is (equal (http port (crlf "GET /sub HTTP/0.9" "")) (crlf "404 Not Found"))
               "a directory is not a file")
           (dolist (bad (list "POST /hello.txt HTTP/1.0" "garbage" "" "GET" "GET  /hello.txt"
                              "GET /hello.txt HTTP/1.0 extra" "GET hello.txt"))
             (is (equal (http port (crlf bad "")) (crlf "400 Bad Request"))
                 (format nil "malformed ~S" bad)))
           ;; escapes from the root
           (dolist (path (list "/../secret.txt" "/sub/../../secret.txt" "//etc/passwd"
                               "/%2e%2e/secret.txt" "/link-out" "/.hidden" "/sub/../hello.txt"
                               (format nil "/hello.txt~C" (code-char 0))
                               (format nil "/hello.txt~C/../../secret.txt" (code-char 0))
                               "/..\\secret.txt" "/etc/passwd"))
             (let ((answer (http port (crlf (format nil "GET ~A HTTP/0.9" path) ""))))
               (is (refused-p answer) (format nil "~S refused" path))
               (is (not (and (stringp answer) (search "SECRET" answer)))
                   (format nil "~S leaks nothing" path))))
           ;; a 1 MiB request line: refused (or reset), never read whole
           (let ((answer (http port (concatenate 'string "GET /"
                                                 (make-string (* 1024 1024) :initial-element #\a)
                                                 (crlf " HTTP/0.9" "")))))
             (is (refused-p answer) "1 MiB request line"))
           ;; a client that connects and says nothing is dropped after
           ;; --idle, and others are served meanwhile
           (incf *connections*)
           (with-open-stream (idle (port:open-socket "127.0.0.1" port))
             (let ((start (get-internal-real-time)))
               (is (equal (http port (crlf "GET /hello.txt" "")) good) "served beside an idle client")
               (is (null (read-line idle nil)) "the idle client is dropped")
               (let ((took (/ (- (get-internal-real-time) start) internal-time-units-per-second)))
                 (is (< 0.5 took 10) (format nil "after ~,1F s" took)))))
           ;; clients that vanish mid-request
           (incf *connections*)
           (with-open-stream (c (port:open-socket "127.0.0.1" port))
             (write-string "GET /hel" c)
             (finish-output c))
           (incf *connections*)
           (let ((c (port:open-socket "127.0.0.1" port)))
             (write-string "GET /hello.txt HTTP/1.0" c)
             (finish-output c)
             (close c :abort t))
           (incf *connections*)
           (let ((c (port:open-socket "127.0.0.1" port)))   ; asks, leaves before the answer
             (write-string (crlf "GET /hello.txt HTTP/0.9" "") c)
             (finish-output c)
             (close c :abort t))
           ;; and it still serves, many clients at once
           (is (equal (http port (crlf "GET /hello.txt HTTP/0.9" "")) good) "still serving")
           (let ((threads (loop repeat 10
                                do (incf *connections*)
                                collect (spawn "client" (lambda ()
                                                          (safe-exchange port (crlf "GET /hello.txt" "")))))))
             (is (every (lambda (th) (equal (join th) (list good))) threads)
                 "10 clients at once"))
           (is (= *connections* max) (format nil "~D connections made" *connections*))
           (is (eql (finish-program server 60) 0) "the server stopped by itself after --max")
           (let ((log (program-output server)))
             (is (= max (count-if-not (lambda (l) (search "http-server:" l)) log))
                 "one log line per connection")
             (is (<= 30 (count-if (lambda (l) (search "Z 127.0.0.1:" l)) log))
                 "requests are logged with the peer's address")
             (is (find-if (lambda (l) (search "\"GET /hello.txt HTTP/0.9\" 200 2 lines" l)) log))
             (is (find-if (lambda (l) (search "404" l)) log))
             (is (find-if (lambda (l) (search "dropped: idle" l)) log))
             (is (find-if (lambda (l) (search "dropped: client left" l)) log))
             (is (find-if (lambda (l) (search "400 too long" l)) log))
             (is (notany (lambda (l) (search "SECRET" l)) log))
             (is (notany (lambda (l) (find-if (lambda (ch) (< (char-code ch) 32)) l)) log)
                 "no control characters reach the log")))
      (finish-program server 1))))

(deftest http-client-failures ()
  ;; nobody listening: a clear message and exit code 1, no backtrace
  (let* ((s (port:open-socket-server 0 :interface "127.0.0.1"))
         (port (nth-value 1 (port:socket-server-host/port s))))
    (port:socket-server-close s)
    (multiple-value-bind (lines code)
        (run-example "http-client.lisp" "127.0.0.1" (princ-to-string port) "/")
      (is (eql code 1))
      (is (find-if (lambda (l) (search "Connection refused" l)) lines))))
  (multiple-value-bind (lines code) (run-example "http-client.lisp")
    (is (eql code 2))
    (is (find-if (lambda (l) (search "usage" l)) lines))))

;;; ------------------------------------------------------------------
;;; Echo server and client

(deftest echo-end-to-end (:timeout 180)
  (let* ((server (start-example "echo-server.lisp" "0" "--max" "3"))
         (port (listening-port server)))
    (unwind-protect
         (progn
           ;; the first client holds its connection open ...
           (with-open-stream (a (port:open-socket "127.0.0.1" port))
             (write-line "first" a)
             (finish-output a)
             (is (equal (read-line a) "first"))
             ;; ... while the example client is served
             (multiple-value-bind (lines code)
                 (multiple-value-bind (command argv)
                     (example-command "echo-client.lisp" (list "127.0.0.1" (princ-to-string port)))
                   (run command argv :input (write-file (scratch "echo-input.txt")
                                                        (format nil "hello~%wörld~%~%last~%"))))
               (is (eql code 0))
               (is (equal lines '("hello" "wörld" "" "last"))))
             (write-line "still here" a)
             (finish-output a)
             (is (equal (read-line a) "still here")))
           ;; many lines in flight at once
           (with-open-stream (c (port:open-socket "127.0.0.1" port))
             (let ((writer (spawn "writer" (lambda ()
                                             (dotimes (i 2000) (format c "line ~D~%" i))
                                             (finish-output c)
                                             :sent))))
               (is (loop for i below 2000
                         always (equal (read-line c) (format nil "line ~D" i))))
               (is (equal (join writer) '(:sent)))))
           (is (eql (finish-program server 30) 0) "stopped by itself after 3 connections")
           (let ((log (program-output server)))
             (is (= 3 (count-if (lambda (l) (search " connected" l)) log)))
             (is (find-if (lambda (l) (search "closed after 2000 lines" l)) log))
             (is (find-if (lambda (l) (search "127.0.0.1:" l)) log))))
      (finish-program server 1))))

;;; The echo server holds any number of idle clients on its poller (issue
;;; 19): a normal client is answered at once beside 2,000 idle ones, and
;;; after they leave; a silent client is dropped after --idle seconds.

(defun echo-once (port line)
  "One line to the echo server on PORT and the line back (NIL on no
answer within 10 s, :RESET when the server refused)."
  (handler-case
      (with-open-stream (s (socket:socket-connect port "127.0.0.1" :timeout 5))
        (write-line line s)
        (finish-output s)
        (mp:with-timeout (10 nil) (read-line s nil)))
    (socket:socket-error () :reset)))

(deftest echo-server-beside-2000-idle-clients (:timeout 240)
  (let ((room (fd-room)) (n 2000))
    (if (or (null room) (< room (+ n 100)))
        (format t "~&  SKIP: ~D idle connections need ~D descriptors; the soft limit leaves ~A ~
                     (the hard limit is too low to raise it)~%" n (+ n 100) room)
        (let* ((p (start-example "echo-server.lisp" "0" "--quiet" "--idle" "120"))
               (port (listening-port p))
               (idle '()))
          (unwind-protect
               (progn
                 (setf idle (flood port n))
                 (is (>= (length idle) n) (format nil "~D idle connections made" (length idle)))
                 (is (equal (echo-once port "during") "during")
                     "a normal client is answered at once beside the idle ones")
                 (mapc #'close idle)
                 (setf idle '())
                 (is (equal (echo-once port "after") "after") "and after they left")
                 (is (eq :running (ext:external-process-status (program-process p)))
                     "the server is still running"))
            (mapc #'close idle)
            (finish-program p 1)))))
  ;; the idle timeout, on the deadline queue
  (let* ((p (start-example "echo-server.lisp" "0" "--idle" "1"))
         (port (listening-port p)))
    (unwind-protect
         (with-open-stream (s (socket:socket-connect port "127.0.0.1"))
           (let* ((start (get-internal-real-time))
                  (got (mp:with-timeout (15 :timeout) (read-line s nil :eof)))
                  (secs (/ (- (get-internal-real-time) start) internal-time-units-per-second)))
             (is (eq got :eof) (format nil "a silent client is dropped: ~S" got))
             (is (<= 0.9 secs 10) (format nil "after about 1 s: ~,2F s" secs))
             (is (wait-for-line p "dropped (idle 1 s)" 5) "and the log says so")))
      (finish-program p 1))))

;;; ------------------------------------------------------------------
;;; REPL server, with a real CLISP as the client

(defparameter *clisp-client* "
(let ((port (parse-integer (first ext:*args*))))
  (with-open-stream (s (socket:socket-connect port \"127.0.0.1\"))
    (format t \"local-port ~D~%\" (nth-value 1 (socket:socket-stream-local s t)))
    (format s \"(+ 1 2)~%(values 1 \\\"two\\\" :three)~%(car 5)~%\")
    (format s \"(defun sq (x) (* x x))~%(sq 12)~%(list 1~% 2)~%\")
    (force-output s)
    (dotimes (i 6) (format t \"answer ~A~%\" (read-line s)))))
")

(deftest repl-server-end-to-end (:timeout 180)
  (let* ((server (start-example "repl-server.lisp" "0" "--max" "2"))
         (port (listening-port server)))
    (unwind-protect
         (progn
           (is (search "listening on 127.0.0.1:" (wait-for-line server "listening on"))
               "loopback unless told otherwise")
           (is (wait-for-line server "EVALUATES ANY LISP FORM") "the loud warning")
           ;; a client holds an unfinished form, cut inside a UTF-8
           ;; character, while CLISP talks: it must block nobody
           (with-open-stream (held (port:open-socket "127.0.0.1" port t))
             (flet ((send (&rest octets)
                      (write-sequence (coerce octets '(vector (unsigned-byte 8))) held)
                      (finish-output held)))
               (apply #'send (map 'list #'char-code "(length \"")) ; (length "
               (send #xc3))                                          ; half of é
             (multiple-value-bind (lines code)
                 (run "clisp" (list "-q" "-norc" (write-file (scratch "clisp-client.lisp") *clisp-client*)
                                    (princ-to-string port)))
               (is (eql code 0) "clisp ran")
               (let ((answers (remove-if-not (lambda (l) (eql 0 (search "answer " l))) lines)))
                 (is (= (length answers) 6) (format nil "CLISP saw ~S" lines))
                 (is (equal (first answers) "answer 3"))
                 (is (equal (second answers) "answer 1 \"two\" :THREE"))
                 (is (eql 0 (search "answer ;; error: " (third answers))))
                 (is (search "CAR" (third answers)))
                 (is (equal (nthcdr 3 answers) '("answer SQ" "answer 144" "answer (1 2)"))))
               (let* ((line (find "local-port " lines :test #'search))
                      (clisp-port (and line (parse-integer line :start 11))))
                 (is clisp-port)
                 (is (wait-for-line server (format nil "peer 127.0.0.1:~D local 127.0.0.1:~D"
                                                   clisp-port port) 5)
                     "the log line gives both addresses")))
             (write-sequence (coerce (list #xa9 34 41 10) '(vector (unsigned-byte 8))) held)
             (finish-output held)                                    ; the rest of é, then ")
             (let ((answer (loop for b = (read-byte held nil)
                                 until (or (null b) (= b 10)) collect b)))
               (is (equal answer (list (char-code #\1))) "the held form completes")))
           (is (eql (finish-program server 30) 0) "stopped by itself after 2 connections")
           (is (= 2 (count-if (lambda (l) (search "connection " l)) (program-output server)))))
      (finish-program server 1))))

;;; ------------------------------------------------------------------
;;; A flood of idle clients (issues 14 and 19): the HTTP server holds
;;; them all on its poller, drops idle ones and serves normal requests
;;; during and after the flood.

(defun fd-room ()
  "How many more descriptors this process may open (soft limit minus open ones)."
  (let ((limit (ignore-errors
                (parse-integer
                 (first (run "/bin/sh" (list "-c" "ulimit -Sn"))) :junk-allowed t))))
    (and limit (- limit (open-fd-count)))))

(defun flood (port n)
  "Open N idle connections to 127.0.0.1:PORT (sending nothing); the list."
  (let ((streams '()))
    (handler-case
        (dotimes (i n)
          (push (socket:socket-connect port "127.0.0.1" :timeout 5) streams))
      (socket:socket-error (c)
        (format t "~&  flood: ~D connections, then ~A~%" (length streams) c)))
    streams))

(deftest http-server-beside-2000-idle-clients (:timeout 240)
  ;; issue 19: on the poller, one thread holds any number of idle clients
  ;; (a slowloris used to fill the 64 thread slots): a normal client is
  ;; answered at its first try beside 2,000 idle ones, and after they leave
  (let ((room (fd-room)) (n 2000))
    (if (or (null room) (< room (+ n 100)))
        (format t "~&  SKIP: ~D idle connections need ~D descriptors; the soft limit leaves ~A ~
                     (the hard limit is too low to raise it)~%" n (+ n 100) room)
        (let* ((root (make-root))
               (p (start-example "http-server.lisp" "0" root "--idle" "120"))
               (port (listening-port p))
               (good (utf8-latin1 *hello-response*))
               (idle '()))
          (unwind-protect
               (progn
                 (is (equal (safe-exchange port (crlf "GET /hello.txt")) good) "before the flood")
                 (setf idle (flood port n))
                 (is (>= (length idle) n) (format nil "~D idle connections made" (length idle)))
                 (let* ((start (get-internal-real-time))
                        (answer (safe-exchange port (crlf "GET /hello.txt HTTP/1.0" "Host: x" "")))
                        (took (/ (- (get-internal-real-time) start) internal-time-units-per-second)))
                   (format t "~&  a normal request beside ~D idle connections: ~,3F s~%"
                           (length idle) took)
                   (is (equal answer good)
                       (format nil "a normal client is answered at its first try beside the idle ones: ~S"
                               answer)))
                 (is (equal (curl port "/hello.txt")
                            (list (format nil "Hello, world.~C" #\Return)
                                  (format nil "Second line: ünïcödé.~C" #\Return)))
                     "and curl too")
                 (is (notany #'listen idle) "the idle clients got nothing")
                 (mapc #'close idle)
                 (setf idle '())
                 (is (equal (safe-exchange port (crlf "GET /hello.txt")) good) "and after they left")
                 (is (wait-for-line p "dropped: client left" 10) "their leaving is logged")
                 (is (eq :running (ext:external-process-status (program-process p)))
                     "the server is still running"))
            (mapc #'close idle)
            (finish-program p 1)))))
  ;; the idle timeout on the poller's clocks, for many clients at once
  (let* ((root (make-root))
         (p (start-example "http-server.lisp" "0" root "--idle" "2"))
         (port (listening-port p))
         (idle (flood port 200)))
    (unwind-protect
         (let* ((start (get-internal-real-time))
                (half (subseq idle 0 100)))
           ;; half of them send half a request: that does not save them
           (dolist (s half) (write-string "GET /hel" s) (finish-output s))
           (let ((ends (mapcar (lambda (s) (mp:with-timeout (15 :timeout) (read-line s nil :eof)))
                               idle))
                 (secs (/ (- (get-internal-real-time) start) internal-time-units-per-second)))
             (is (every (lambda (e) (eq e :eof)) ends)
                 (format nil "every idle client is dropped: ~S" (remove-duplicates ends)))
             (is (<= 1.9 secs 12) (format nil "after about 2 s: ~,2F s" secs))
             (is (equal (safe-exchange port (crlf "GET /hello.txt")) (utf8-latin1 *hello-response*))
                 "and a normal client is served")
             (is (loop repeat 50
                       thereis (<= 200 (count-if (lambda (l) (search "dropped: idle" l))
                                                 (program-output p)))
                       do (sleep 0.1))
                 "the log says dropped: idle for each")))
      (mapc #'close idle)
      (finish-program p 1))))
