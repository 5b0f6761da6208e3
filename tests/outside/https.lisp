;;;; https.lisp - HTTPS through cl+ssl on ecl-sock's SB-BSD-SOCKETS face:
;;;; Drakma, Hunchentoot and cl+ssl unchanged (Debian's packages, ASDF).
;;;;
;;;; Owns: cl+ssl getting the descriptor of an ecl-sock stream (its
;;;;   STREAM-FD method, lisp/libraries.lisp) in both loading orders, our
;;;;   pending output sent first and input read ahead a clear error; Drakma
;;;;   over HTTPS against `openssl s_server -www` (a new connection per
;;;;   request, with and without :verify) and against Hunchentoot (keep-alive
;;;;   on one connection); Hunchentoot's easy-ssl-acceptor against `ab -c 4`
;;;;   (one request per connection, and keep-alive) and curl, every answer
;;;;   complete; bad input: a TLS peer sending garbage to either side gives
;;;;   cl+ssl's condition, the server goes on, no descriptor leaked.
;;;; Must not: patch the libraries; contact anything but loopback.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (outside:load-systems :bsd "cl+ssl" "drakma" "hunchentoot"))

(defpackage "TEST-HTTPS" (:use "CL" "HARNESS"))
(in-package "TEST-HTTPS")

(defparameter *tests-dir* (or (ext:getenv "TEST_SRCDIR") "tests"))
(defparameter *certs* (format nil "~A/outside-certs/" (or (ext:getenv "TEST_BUILDDIR") "/tmp")))
(defun cert (name) (format nil "~A~A" *certs* name))

(unless (eql 0 (nth-value 1 (ext:run-program "/bin/sh" (list (format nil "~A/tls/make-certs.sh" *tests-dir*) *certs*)
                                             :output nil :error nil :wait t)))
  (error "tests/tls/make-certs.sh failed"))

(defun port-of-line (p marker)
  (let ((line (wait-for-line p marker)))
    (assert line () "no ~S line; output: ~S" marker (program-output p))
    (parse-integer line :start (1+ (position #\: line :from-end t)))))

(defun quiet-fd-count ()
  (si:gc t) (sleep 0.2) (si:gc t)
  (open-fd-count))

(defun tcp-pair ()
  "A connected pair of the face's TCP sockets' streams (octets)."
  (let ((l (make-instance 'sb-bsd-sockets:inet-socket :type :stream :protocol :tcp))
        (c (make-instance 'sb-bsd-sockets:inet-socket :type :stream :protocol :tcp)))
    (sb-bsd-sockets:socket-bind l #(127 0 0 1) 0)
    (sb-bsd-sockets:socket-listen l 1)
    (sb-bsd-sockets:socket-connect c #(127 0 0 1) (nth-value 1 (sb-bsd-sockets:socket-name l)))
    (let ((a (sb-bsd-sockets:socket-accept l)))
      (sb-bsd-sockets:socket-close l)
      (values (sb-bsd-sockets:socket-make-stream c :input t :output t :element-type 'character)
              (sb-bsd-sockets:socket-make-stream a :input t :output t :element-type 'character)))))

;;; ------------------------------------------------------------------
;;; The descriptor hand-over

(deftest stream-fd-of-ecl-sock-streams ()
  (multiple-value-bind (c a) (tcp-pair)
    (unwind-protect
         (progn
           (is (integerp (cl+ssl:stream-fd c)) "cl+ssl gets the descriptor")
           (is (= (eclsock::%stream-fd c) (cl+ssl:stream-fd c)))
           ;; pending output goes out first
           (write-string "abc" c)
           (cl+ssl:stream-fd c)
           (is (equal "abc" (let ((s (make-string 3))) (read-sequence s a) s)) "pending output sent")
           ;; input read ahead would be lost: a clear error
           (write-line "hello" a) (write-line "world" a) (force-output a)
           (is (equal "hello" (read-line c)))
           (let ((e (signals eclsock::input-read-ahead-error (cl+ssl:stream-fd c))))
             (is (search "read ahead" (princ-to-string e))))
           (is (equal "world" (read-line c)) "nothing lost")
           (is (integerp (cl+ssl:stream-fd c)) "fine once read")
           ;; other streams keep cl+ssl's own methods
           (let ((s (make-string-input-stream "x")))
             (is (eq s (cl+ssl:stream-fd s)) "a string stream: cl+ssl's default"))
           (close c)
           (signals socket:socket-error (cl+ssl:stream-fd c)))
      (close c) (close a))))

(deftest cl+ssl-loaded-before-ecl-sock (:timeout 600)
  ;; the other order, in a child ECL: cl+ssl first, then ecl-sock.  cl+ssl
  ;; loads usocket, which brings ECL's contrib sockets: the SB-BSD-SOCKETS
  ;; face then refuses to load (it must come first), so this order is the
  ;; core module's, (require :sock)
  (let ((p (start-program (or (ext:getenv "ECL") "ecl")
                          (list "-norc" "-load" (format nil "~A/lisp/harness.lisp" *tests-dir*)
                                "-load" (format nil "~A/outside/load.lisp" *tests-dir*)
                                "-eval" "(outside:load-systems-before-face :sock \"cl+ssl\")"
                                "-eval" "(format t \"~&methods ~A~%\" (mapcar (lambda (m) (class-name (first (clos:method-specializers m)))) (clos:generic-function-methods #'cl+ssl:stream-fd)))"
                                "-eval" "(let* ((srv (socket:socket-server 0 :interface \"127.0.0.1\")) (s (socket:socket-connect (socket:socket-server-port srv) \"127.0.0.1\"))) (format t \"~&fd ~A~%\" (integerp (cl+ssl:stream-fd s))))"
                                "-eval" "(ext:quit 0)"))))
    (is (eql 0 (finish-program p 500)))
    (is (find-if (lambda (l) (and (search "methods" l) (search "FILE-STREAM" l))) (program-output p))
        (format nil "the method is there: ~S" (last (program-output p) 3)))
    (is (member "fd T" (program-output p) :test #'string=) "and gives the descriptor")))

;;; ------------------------------------------------------------------
;;; Drakma against openssl s_server -www

(defun start-s-server ()
  (start-program "openssl" (list "s_server" "-accept" "127.0.0.1:0" "-www"
                                 "-cert" (cert "server.pem") "-key" (cert "server.key"))))

(deftest drakma-vs-s-server ()
  (let* ((p (start-s-server))
         (port (port-of-line p "ACCEPT"))
         (url (format nil "https://localhost:~D/" port))
         (before (quiet-fd-count)))
    (unwind-protect
         (progn
           (dotimes (i 3)
             (multiple-value-bind (body status) (drakma:http-request url :verify :required :ca-file (cert "ca.pem"))
               (is (= 200 status) "verified")
               (is (search "s_server" body) "the whole page")))
           (dotimes (i 3)
             (multiple-value-bind (body status) (drakma:http-request url)
               (is (= 200 status) "unverified")
               (is (search "s_server" body))))
           (dotimes (i 3)
             (multiple-value-bind (body status) (drakma:http-request url :keep-alive t :close nil)
               (is (= 200 status) "asking for keep-alive (s_server closes: a new connection each)")
               (is (search "s_server" body))))
           ;; our CA not given: the server's certificate is rejected, cl+ssl's condition
           (let ((e (signals cl+ssl::ssl-error (drakma:http-request url :verify :required))))
             (is (typep e 'cl+ssl::ssl-error-verify) (format nil "a verify error: ~S" (type-of e))))
           (is (= before (quiet-fd-count)) "no descriptor leaked"))
      (ext:terminate-process (program-process p))
      (finish-program p 10))))

;;; ------------------------------------------------------------------
;;; Hunchentoot's easy-ssl-acceptor

(hunchentoot:define-easy-handler (hello :uri "/hello") ()
  (setf (hunchentoot:content-type*) "text/plain")
  "hello world")

(hunchentoot:define-easy-handler (big :uri "/big") ()
  (setf (hunchentoot:content-type*) "text/plain")
  (make-string 100000 :initial-element #\x))

(defun start-ssl-acceptor ()
  (let ((a (make-instance 'hunchentoot:easy-ssl-acceptor
                          :address "127.0.0.1" :port 0
                          :ssl-certificate-file (cert "server.pem")
                          :ssl-privatekey-file (cert "server.key")
                          :read-timeout 20 :write-timeout 20
                          :access-log-destination nil :message-log-destination nil)))
    (hunchentoot:start a)
    a))

(defun acceptor-port (a) (usocket:get-local-port (hunchentoot::acceptor-listen-socket a)))

(defun stop-acceptor (a)
  (hunchentoot:stop a :soft t))

(defmacro with-ssl-acceptor ((var) &body body)
  `(let ((,var (start-ssl-acceptor)))
     (unwind-protect (progn ,@body) (stop-acceptor ,var))))

(defun run-ab (&rest args)
  "Run ab with ARGS; its output lines and exit code."
  (let ((p (start-program "ab" args)))
    (values (program-output (progn (finish-program p 120) p))
            (ext:external-process-status (program-process p)))))

(defun ab-number (lines label)
  (let ((l (find-if (lambda (x) (eql 0 (search label x))) lines)))
    (and l (parse-integer l :start (length label) :junk-allowed t))))

(defun ab-check (lines n what)
  (let ((complete (ab-number lines "Complete requests:"))
        (failed (ab-number lines "Failed requests:"))
        (non2xx (find-if (lambda (x) (search "Non-2xx" x)) lines)))
    (is (eql n complete) (format nil "~A: ~D complete of ~D~@[ (~{~A~^ / ~})~]" what complete n
                                 (and (not (eql n complete)) (last lines 6))))
    (is (eql 0 failed) (format nil "~A: ~A failed" what failed))
    (is (null non2xx) (format nil "~A: ~A" what non2xx))
    (format t "~&  ab ~A: ~A~%" what (find-if (lambda (x) (search "Requests per second" x)) lines))))

(deftest hunchentoot-ssl-vs-ab (:timeout 300)
  (with-ssl-acceptor (a)
    (let ((url (format nil "https://127.0.0.1:~D/hello" (acceptor-port a))))
      (ab-check (run-ab "-n" "300" "-c" "4" "-s" "20" url) 300 "one request per connection")
      (ab-check (run-ab "-k" "-n" "300" "-c" "4" "-s" "20" url) 300 "keep-alive"))))

(deftest drakma-keep-alive-vs-hunchentoot-ssl ()
  (with-ssl-acceptor (a)
    (let ((url (format nil "https://localhost:~D/hello" (acceptor-port a)))
          (stream nil))
      (dotimes (i 10)
        (multiple-value-bind (body status headers uri s must-close)
            (drakma:http-request url :verify :required :ca-file (cert "ca.pem")
                                     :close nil :keep-alive t :stream stream)
          (declare (ignore headers uri))
          (is (= 200 status))
          (is (equal "hello world" body))
          (is (not must-close) "the server keeps the connection")
          (when stream (is (eq s stream) "the same connection"))
          (setf stream s)))
      (close stream)
      (multiple-value-bind (body status) (drakma:http-request (format nil "https://localhost:~D/big" (acceptor-port a))
                                                              :verify :required :ca-file (cert "ca.pem"))
        (is (= 200 status))
        (is (= 100000 (length body)) "100,000 characters")))))

(deftest curl-vs-hunchentoot-ssl ()
  (with-ssl-acceptor (a)
    (let* ((url (format nil "https://localhost:~D/hello" (acceptor-port a)))
           (p (start-program "curl" (list "-sS" "--max-time" "20" "--cacert" (cert "ca.pem") url url url))))
      (is (eql 0 (finish-program p 60)))
      (is (equal '("hello worldhello worldhello world") (program-output p))
          (format nil "three answers, keep-alive: ~S" (program-output p))))))

;;; ------------------------------------------------------------------
;;; Bad input

(deftest garbage-to-the-ssl-server ()
  (with-ssl-acceptor (a)
    (let ((before (quiet-fd-count)))
      (dotimes (i 5)
        (multiple-value-bind (c) (let ((s (make-instance 'sb-bsd-sockets:inet-socket :type :stream :protocol :tcp)))
                                   (sb-bsd-sockets:socket-connect s #(127 0 0 1) (acceptor-port a))
                                   (sb-bsd-sockets:socket-make-stream s :input t :output t :element-type 'character))
          (write-string (format nil "GET / HTTP/1.0~C~C~C~C" #\Return #\Newline #\Return #\Newline) c)
          (force-output c)
          ;; the server gives up on the handshake and closes
          (let ((end (handler-case (progn (loop while (read-char c nil)) :eof)
                       (error (e) e))))
            (is (or (eq end :eof) (typep end 'stream-error))
                (format nil "the server closed the connection (end of file or a reset): ~A" end)))
          (close c)))
      (let ((p (start-program "curl" (list "-sS" "--max-time" "20" "--cacert" (cert "ca.pem")
                                           (format nil "https://localhost:~D/hello" (acceptor-port a))))))
        (is (eql 0 (finish-program p 30)))
        (is (equal '("hello world") (program-output p)) "still serving"))
      (loop repeat 50 until (<= (quiet-fd-count) before) do (sleep 0.1))
      (is (<= (quiet-fd-count) before) "no descriptor leaked by the server"))))

(deftest garbage-to-drakma ()
  ;; a "server" that answers the ClientHello with garbage, then closes
  (let* ((l (make-instance 'sb-bsd-sockets:inet-socket :type :stream :protocol :tcp))
         (before (quiet-fd-count)))
    (sb-bsd-sockets:socket-bind l #(127 0 0 1) 0)
    (sb-bsd-sockets:socket-listen l 5)
    (let* ((port (nth-value 1 (sb-bsd-sockets:socket-name l)))
           (server (spawn "garbage"
                          (lambda ()
                            (dotimes (i 2)
                              (let* ((c (sb-bsd-sockets:socket-accept l))
                                     (s (sb-bsd-sockets:socket-make-stream c :input t :output t :element-type '(unsigned-byte 8))))
                                (read-byte s nil)
                                (write-sequence (random-octets 3000) s)
                                (finish-output s)
                                (sb-bsd-sockets:socket-close c)))))))
      (dotimes (i 2)
        (let ((e (handler-case (progn (drakma:http-request (format nil "https://127.0.0.1:~D/" port)) nil)
                   (error (e) e))))
          (is (typep e 'cl+ssl::ssl-error) (format nil "cl+ssl's condition: ~S ~A" (type-of e) e))))
      (join server)
      (sb-bsd-sockets:socket-close l)
      (let ((after (quiet-fd-count)))
        (is (<= after before) (format nil "no descriptor leaked (~D before, ~D after)" before after))))))
