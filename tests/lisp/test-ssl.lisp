;;;; test-ssl.lisp - TLS streams: Allegro's SSL API against real peers
;;;; (openssl s_server / s_client and Python's ssl module) and against
;;;; ourselves; certificate checks with a local CA; hostile peers (garbage,
;;;; a peer that stops mid-handshake, cuts mid-record); leaks of
;;;; descriptors and OpenSSL sessions.
;;;;
;;;; Loopback only, kernel-chosen ports, servers that stop by themselves.
;;;; The certificates are made at test time (tests/tls/make-certs.sh) in
;;;; the build tree's tests/scratch/tls-certs.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "TEST-SSL" (:use "CL" "SOCKET" "HARNESS"))
(in-package "TEST-SSL")


;;; ------------------------------------------------------------------
;;; Helpers

(defparameter *scratch* (or (ext:getenv "TEST_BUILDDIR") "/tmp"))
(defparameter *tests-dir* (or (ext:getenv "TEST_SRCDIR") "tests"))
(defparameter *certs* (format nil "~A/tls-certs/" *scratch*))

(defun cert (name) (format nil "~A~A" *certs* name))

(defun peer-port (p marker)
  "The port in P's first line containing MARKER (\"PORT 123\", \"ACCEPT h:123\")."
  (let ((line (wait-for-line p marker)))
    (assert line () "no ~S line; output: ~S" marker (program-output p))
    (parse-integer line :start (1+ (position-if (lambda (c) (member c '(#\Space #\:)))
                                                line :from-end t)))))

(defun python-peer (&rest args)
  (start-program "python3" (list* (format nil "~A/tls/peer.py" *tests-dir*) args)))

(defun shell (command)
  (multiple-value-bind (s code) (ext:run-program "/bin/sh" (list "-c" command)
                                                 :output nil :error nil :wait t)
    (declare (ignore s))
    code))

(defun sessions () (values (eclsock::ssl-counts)))

(defun open-socket-count ()
  "How many of this process's descriptors are sockets (the peers' pipes,
which ECL's RUN-PROGRAM keeps until GC, do not count)."
  (count-if (lambda (path)
              (let ((fd (parse-integer (pathname-name path) :junk-allowed t)))
                (and fd (ignore-errors (eclsock::%local-address fd) t))))
            (ignore-errors (directory "/proc/self/fd/*" :resolve-symlinks nil))))

(defmacro without-leaks ((&key (settle 0)) &body body)
  "Run BODY, then check that no descriptor and no OpenSSL session is left."
  (let ((fds (gensym)) (ssl (gensym)))
    `(let ((,fds (open-socket-count)) (,ssl (sessions)))
       (multiple-value-prog1 (progn ,@body)
         (sleep ,settle)
         ;; a server thread closes its listener after JOIN returned
         (loop repeat 60 until (<= (open-socket-count) ,fds) do (sleep 0.05))
         (is (= ,ssl (sessions)) "no OpenSSL session leaked")
         (is (<= (open-socket-count) ,fds) "no socket descriptor leaked")))))

(defun tls-server (handler &rest ssl-args)
  "A server on 127.0.0.1 that accepts one connection, makes it a TLS stream
with SSL-ARGS and calls HANDLER on it.  Returns the port and the thread,
whose JOIN gives HANDLER's values, (:ERROR condition) or (:SSL condition)
when the TLS switch failed."
  (let ((server (socket-server 0 :interface "127.0.0.1")))
    (values (socket-server-port server)
            (spawn "tls server"
                   (lambda ()
                     (block serve
                       (unwind-protect
                            (let* ((s (socket-accept server :timeout 20))
                                   (tls (handler-case (apply #'make-ssl-server-stream s ssl-args)
                                          (error (e) (return-from serve (list :ssl e))))))
                              (unwind-protect (funcall handler tls)
                                (close tls)))
                         (socket-server-close server))))))))

(defun answer-line (tls)
  "Server handler: read a line, answer \"you said: LINE\"."
  (let ((line (read-line tls nil)))
    (format tls "you said: ~A~%" line)
    (finish-output tls)
    line))

(defun ask (port &rest client-args &key (host "localhost") &allow-other-keys)
  "Connect to PORT, start TLS with CLIENT-ARGS, send hello, return the answer."
  (remf client-args :host)
  (let* ((s (socket-connect port host :timeout 10))
         (tls (handler-case (apply #'make-ssl-client-stream s client-args)
                (error (e) (close s) (error e)))))
    (unwind-protect
         (progn (write-line "hello" tls)
                (finish-output tls)
                (read-line tls nil :eof))
      (close tls))))

(defun read-file-octets (name)
  (with-open-file (in name :element-type '(unsigned-byte 8))
    (let ((v (make-array (file-length in) :element-type '(unsigned-byte 8))))
      (read-sequence v in)
      v)))

(defconstant +bulk+ (* 64 1024 1024))

;;; The certificates, once per run.
(unless (eql 0 (shell (format nil "sh '~A/tls/make-certs.sh' '~A'" *tests-dir* *certs*)))
  (error "tests/tls/make-certs.sh failed"))

;;; ------------------------------------------------------------------
;;; The module

(deftest require-ssl ()
  ;; (require :ssl) as in Allegro: ssl.fas requires sock and provides SSL
  (require :ssl)
  (is (member "SSL" *modules* :test #'string-equal))
  (is (fboundp 'make-ssl-client-stream))
  (is (member :sni *ssl-features*))
  (is (third (multiple-value-list (eclsock::ssl-counts))) "built with OpenSSL"))

;;; ------------------------------------------------------------------
;;; Context settings travel by name and are checked once in C

(deftest context-settings-checked ()
  ;; a 14-character string was taken for the 14-slot settings vector and
  ;; its characters read as Lisp objects
  (let ((e (handler-case (eclsock::%ssl-make-context nil "abcdefghijklmn")
             (type-error (e) e))))
    (is (typep e 'type-error) "a string is refused")
    (when (typep e 'type-error)
      (is (equal "abcdefghijklmn" (type-error-datum e)))
      (is (eq 'list (type-error-expected-type e)))
      (is (search "not a property list" (princ-to-string e)))))
  (signals type-error (eclsock::%ssl-make-context nil (make-array 14 :initial-element nil)))
  (signals type-error (eclsock::%ssl-make-context nil '(:verify)))
  (let ((e (handler-case (eclsock::%ssl-make-context nil '(:verfy 2))
             (type-error (e) e))))
    (is (typep e 'type-error) "an unknown key is refused")
    (when (typep e 'type-error)
      (is (eq :verfy (type-error-datum e)))
      (is (member :verify (type-error-expected-type e)))))
  (signals type-error (eclsock::%ssl-make-context nil '(:verify 1 :verify 2)))
  (signals type-error (eclsock::%ssl-make-context nil '(:verify 3)))
  (signals type-error (eclsock::%ssl-make-context nil '(:ciphers 7)))
  ;; by name, any subset: the defaults
  (is (eclsock::%ssl-make-context nil '()))
  (is (eclsock::%ssl-make-context nil '(:verify 2 :ciphers "HIGH"))))

;;; ------------------------------------------------------------------
;;; Client against openssl s_server

(deftest client-vs-openssl-s-server ()
  ;; s_server -WWW serves files: a small one read with read-line, and 64
  ;; MiB read with read-sequence, byte-exact
  (let* ((dir (format nil "~Awww/" *certs*))
         (big (format nil "~Abig.bin" dir)))
    (ensure-directories-exist dir)
    (with-open-file (o (format nil "~Ahello.txt" dir) :direction :output :if-exists :supersede)
      (format o "line one~%line two~%"))
    (unless (probe-file big)
      (shell (format nil "head -c ~D /dev/urandom > '~A'" +bulk+ big)))
    (without-leaks (:settle 0.1)
      (dolist (file '("hello.txt" "big.bin"))
        (let* ((p (start-program "/bin/sh" (list "-c" (format nil "cd '~A' && exec openssl s_server -accept 127.0.0.1:0 -naccept 1 -WWW -cert '~A' -key '~A'"
                                                      dir (cert "server.pem") (cert "server.key")))))
               (port (peer-port p "ACCEPT"))
               (s (socket-connect port "localhost" :element-type :default :timeout 10))
               (tls (make-ssl-client-stream s :ca-file (cert "ca.pem"))))
          (unwind-protect
               (progn
                 (format tls "GET /~A HTTP/1.0~C~C~C~C" file #\Return #\Linefeed #\Return #\Linefeed)
                 (force-output tls)
                 (is (search "200 ok" (read-line tls)))
                 (loop for line = (read-line tls) until (<= (length line) 1))
                 (if (string= file "hello.txt")
                     (progn (is (equal (read-line tls) "line one"))
                            (is (equal (read-line tls) "line two"))
                            (is (null (read-line tls nil))))
                     (let ((got (make-array +bulk+ :element-type '(unsigned-byte 8))))
                       (is (= +bulk+ (read-sequence got tls)))
                       (is (equalp got (read-file-octets big)) "64 MiB byte-exact")
                       (is (null (read-byte tls nil))))))
            (close tls))
          (is (eql 0 (finish-program p))))))))

;;; ------------------------------------------------------------------
;;; Client against Python's ssl module

(deftest client-vs-python-lines ()
  ;; read-line and format over TLS, UTF-8 both ways; socket-status
  (without-leaks (:settle 0.1)
    (let* ((p (python-peer "server" "lines" "--cert" (cert "server.pem") "--key" (cert "server.key")))
           (port (peer-port p "PORT"))
           (s (socket-connect port "localhost" :external-format :utf-8 :timeout 10))
           (tls (make-ssl-client-stream s :ca-file (cert "ca.pem"))))
      (unwind-protect
           (progn
             (is (null (socket-status (cons tls :input) 0.2)) "nothing to read yet")
             (dolist (text '("hello" "λ über café" ""))
               (format tls "~A~%" text)
               (is (eq (socket-status (cons tls :input) 10) :input))
               (is (equal (read-line tls) (format nil "you said: ~A" text))))
             (format tls "bye~%")
             (finish-output tls)
             (is (null (read-line tls nil))))
        (close tls))
      (is (eql 0 (finish-program p))))))

(deftest client-vs-python-bulk-both-ways ()
  ;; 64 MiB to an echoing peer from one thread while another reads it back
  (without-leaks (:settle 0.1)
    (let* ((p (python-peer "server" "echo" "--cert" (cert "server.pem") "--key" (cert "server.key")))
           (port (peer-port p "PORT"))
           (s (socket-connect port "localhost" :element-type '(unsigned-byte 8) :timeout 10))
           (tls (make-ssl-client-stream s :ca-file (cert "ca.pem")))
           (data (read-file-octets (format nil "~Awww/big.bin" *certs*)))
           (truncated nil))
      (unwind-protect
           (let ((writer (spawn "writer"
                                (lambda ()
                                  (loop for start from 0 below +bulk+ by 1000003
                                        do (write-sequence data tls :start start
                                                                    :end (min +bulk+ (+ start 1000003))))
                                  (finish-output tls)
                                  (socket-stream-shutdown tls :output)
                                  :sent)))
                 (got (make-array +bulk+ :element-type '(unsigned-byte 8))))
             (handler-bind ((ssl-truncated-eof (lambda (c) (declare (ignore c)) (setf truncated t))))
               (is (= +bulk+ (read-sequence got tls)))
               (is (null (read-byte tls nil)) "EOF after the echo"))
             (is (equal (join writer) '(:sent)))
             (is (equalp got data) "64 MiB echoed byte-exact")
             (is (not truncated) "the peer sent close_notify: no truncation"))
        (close tls))
      (is (eql 0 (finish-program p))))))

;;; ------------------------------------------------------------------
;;; Server against openssl s_client and Python

(deftest server-vs-openssl-s-client ()
  (without-leaks (:settle 0.1)
    (multiple-value-bind (port thread)
        (tls-server #'answer-line :certificate (cert "server.pem") :key (cert "server.key"))
      (let ((p (start-program "/bin/sh"
                      (list "-c" (format nil "echo hello | exec openssl s_client -connect 127.0.0.1:~D -servername localhost -CAfile '~A' -verify_return_error -quiet -ign_eof"
                                         port (cert "ca.pem"))))))
        (is (wait-for-line p "you said: hello"))
        (finish-program p)
        (is (equal (join thread) '("hello")))))))

(deftest server-vs-python-client-certificates ()
  ;; :verify :required: a client certificate from the CA passes and is
  ;; readable; none, or one from nowhere, fails the handshake
  (without-leaks (:settle 0.1)
    (multiple-value-bind (port thread)
        (tls-server (lambda (tls)
                      (let ((c (get-ssl-peer-certificate tls)))
                        (list (answer-line tls)
                              (cdr (assoc "CN" (x509-certificate-subject c) :test #'string=))
                              (eq c (get-ssl-peer-certificate tls))
                              (get-ssl-verify-result tls))))
                    :certificate (cert "server.pem") :key (cert "server.key")
                    :verify :required :ca-file (cert "ca.pem"))
      (let ((p (python-peer "client" "lines" "--port" (princ-to-string port) "--ca" (cert "ca.pem")
                            "--cert" (cert "client.pem") "--key" (cert "client.key"))))
        (is (wait-for-line p "GOT you said: hello"))
        (finish-program p)
        (is (equal (join thread) '(("hello" "test client" t 0))))))
    (dolist (client '(nil "rogue-client"))
      (multiple-value-bind (port thread)
          (tls-server #'answer-line :certificate (cert "server.pem") :key (cert "server.key")
                                    :verify :required :ca-file (cert "ca.pem"))
        (let ((p (apply #'python-peer "client" "lines" "--port" (princ-to-string port)
                        "--ca" (cert "ca.pem")
                        (and client (list "--cert" (cert (format nil "~A.pem" client))
                                          "--key" (cert (format nil "~A.key" client)))))))
          (finish-program p)
          (let ((r (first (join thread))))
            (is (eq (first r) :ssl) (format nil "client ~A refused: ~S ~S" client r
                                            (program-output p)))
            (is (typep (second r) (if client 'ssl-verify-error 'ssl-handshake-error)))))))))

;;; ------------------------------------------------------------------
;;; Certificate checks (client side, secure by default)

(deftest bad-certificates-refused-by-default ()
  (without-leaks (:settle 0.2)
    (loop for (cert host ca reason) in
          '(("server" "localhost" nil :unknown-ca)    ; no :ca-file: not in the system store
            ("expired" "localhost" t :expired)
            ("other" "localhost" t :hostname-mismatch)
            ("other" "127.0.0.1" t :hostname-mismatch)
            ("self" "localhost" t :self-signed))
          do (multiple-value-bind (port thread)
                 (tls-server #'answer-line :certificate (cert (format nil "~A.pem" cert))
                                           :key (cert (format nil "~A.key" cert)))
               (let ((e (signals ssl-verify-error
                          (apply #'ask port :host host (and ca (list :ca-file (cert "ca.pem")))))))
                 (when e
                   (is (eq (ssl-verify-error-reason e) reason) (format nil "~A: ~A" cert reason))
                   (is (typep e 'ssl-handshake-error))
                   (is (typep e 'socket-error))
                   (is (search "certificate verify failed" (princ-to-string e)))))
               (join thread))
             ;; and accepted with :verify nil
             (multiple-value-bind (port thread)
                 (tls-server #'answer-line :certificate (cert (format nil "~A.pem" cert))
                                           :key (cert (format nil "~A.key" cert)))
               (is (equal (ask port :host host :verify nil) "you said: hello")
                   (format nil "~A accepted with :verify nil" cert))
               (join thread)))))

(deftest good-certificate-by-name-and-address ()
  (without-leaks (:settle 0.1)
    (dolist (host '("localhost" "127.0.0.1"))
      (multiple-value-bind (port thread)
          (tls-server #'answer-line :certificate (cert "server.pem") :key (cert "server.key"))
        (is (equal (ask port :host host :ca-file (cert "ca.pem")) "you said: hello") host)
        (join thread)))
    ;; :server-name names the certificate to expect (and SNI)
    (multiple-value-bind (port thread)
        (tls-server #'answer-line :certificate (cert "other.pem") :key (cert "other.key"))
      (is (equal (ask port :server-name "other.example" :ca-file (cert "ca.pem"))
                 "you said: hello"))
      (join thread))))

(deftest contexts-and-certificate-readers ()
  (let ((client (make-ssl-client-context :ca-file (cert "ca.pem")))
        (server (make-ssl-server-context :certificate (cert "server.pem") :key (cert "server.key"))))
    (is (ssl-context-p client))
    (is (search "SSL-CONTEXT client" (prin1-to-string client) :test #'char-equal))
    (is (search "SSL-CONTEXT server" (prin1-to-string server) :test #'char-equal))
    (signals error (make-ssl-client-stream (make-string-output-stream) :context client))
    (signals ssl-configuration-error (make-ssl-client-context :ca-file "/nonexistent.pem"))
    (signals ssl-configuration-error (make-ssl-server-context :certificate (cert "server.pem")
                                                              :key (cert "other.key")))
    (signals ssl-configuration-error (make-ssl-client-context :method :sslv3))
    (without-leaks (:settle 0.1)
      (dotimes (i 2)
        (multiple-value-bind (port thread)
            (tls-server (lambda (tls) (answer-line tls) (ssl-do-handshake tls)) :context server)
          (let* ((s (socket-connect port "localhost" :timeout 10))
                 (tls (make-ssl-client-stream s :context client)))
            (unwind-protect
                 (let ((c (get-ssl-peer-certificate tls)))
                   (is (ssl-do-handshake tls))
                   (is (eq (x509-certificate-version c) :v3))
                   (is (integerp (x509-certificate-serial-number c)))
                   (is (equal (x509-certificate-subject c) '(("O" . "ecl-sock") ("CN" . "localhost"))))
                   (is (equal (cdr (assoc "CN" (x509-certificate-issuer c) :test #'string=))
                              "ecl-sock test CA"))
                   (is (< (x509-certificate-not-before c) (get-universal-time)
                          (x509-certificate-not-after c)))
                   (is (equal (x509-certificate-subject-alt-name c)
                              '(("DNS" . "localhost") ("IP Address" . "127.0.0.1"))))
                   (is (eql 0 (get-ssl-verify-result tls)))
                   (is (search "CN=localhost" (prin1-to-string c)))
                   (is (search "TLS SOCKET-STREAM" (prin1-to-string tls)))
                   ;; the old stream is closed and must not be used
                   (is (not (open-stream-p s)))
                   (signals error (write-line "x" s))
                   ;; :ca-file with :context is refused, as in Allegro
                   (signals error (make-ssl-client-stream tls :context client :ca-file "x"))
                   (write-line "ping" tls)
                   (finish-output tls)
                   (is (equal (read-line tls) "you said: ping")))
              (close tls))
            (is (equal (join thread) '(t)))))))))

(deftest allegro-face-and-bivalence ()
  ;; make-socket / accept-connection streams, :format :bivalent: bytes and
  ;; characters on one TLS stream; the Allegro accessors still answer
  (without-leaks (:settle 0.1)
    (let* ((passive (make-socket :connect :passive :local-host "127.0.0.1" :format :bivalent))
           (port (local-port passive))
           (thread (spawn "acl server"
                          (lambda ()
                            (unwind-protect
                                 (let ((tls (make-ssl-server-stream (accept-connection passive)
                                                                    :certificate (cert "server.pem")
                                                                    :key (cert "server.key"))))
                                   (unwind-protect
                                        (let ((b (read-byte tls)) (line (read-line tls)))
                                          (write-byte (1+ b) tls)
                                          (write-line (string-upcase line) tls)
                                          (force-output tls)
                                          (list b line (integerp (remote-port tls))))
                                     (close tls)))
                              (close passive))))))
      (let* ((s (make-socket :remote-host "localhost" :remote-port port :format :bivalent))
             (tls (make-ssl-client-stream s :ca-file (cert "ca.pem"))))
        (unwind-protect
             (progn
               (write-byte 41 tls)
               (write-line "mixed" tls)
               (force-output tls)
               (is (= (read-byte tls) 42))
               (is (equal (read-line tls) "MIXED"))
               (is (= (remote-port tls) port)))
          (close tls))
        (let ((r (first (join thread))))
          (is (equal r '(41 "mixed" t)) (format nil "server saw ~S" r)))))))

;;; ------------------------------------------------------------------
;;; Hostile peers

(defun plain-server (handler)
  "A plain TCP server on 127.0.0.1 for one connection: HANDLER gets the stream."
  (let ((server (socket-server 0 :interface "127.0.0.1")))
    (values (socket-server-port server)
            (spawn "plain server"
                   (lambda ()
                     (unwind-protect
                          (let ((s (socket-accept server :timeout 20 :element-type '(unsigned-byte 8))))
                            (unwind-protect (funcall handler s) (close s)))
                       (socket-server-close server)))))))

(deftest garbage-instead-of-handshake ()
  (without-leaks (:settle 0.1)
    ;; a server that answers the ClientHello with HTTP
    (multiple-value-bind (port thread)
        (plain-server (lambda (s)
                        (write-sequence (map '(vector (unsigned-byte 8)) #'char-code
                                             (format nil "HTTP/1.0 400 Bad Request~C~C~C~C"
                                                     #\Return #\Linefeed #\Return #\Linefeed))
                                        s)
                        (finish-output s)
                        (sleep 0.2)))
      (let ((e (signals ssl-handshake-error (ask port :verify nil))))
        (is (and e (not (typep e 'ssl-verify-error))))
        (is (and e (search "SSL_connect" (princ-to-string e)))))
      (join thread))
    ;; a client that sends garbage to a TLS server
    (multiple-value-bind (port thread)
        (tls-server #'answer-line :certificate (cert "server.pem") :key (cert "server.key"))
      (ignore-errors                    ; the server may reset the connection
       (with-open-stream (s (socket-connect port "127.0.0.1"))
         (format s "GET / HTTP/1.0~%~%")
         (finish-output s)
         (read-line s nil)))
      (let ((r (first (join thread))))
        (is (eq (first r) :ssl))
        (is (typep (second r) 'ssl-handshake-error))))))

(deftest peer-stops-mid-handshake ()
  ;; a server that reads the ClientHello and never answers, and a client
  ;; that connects and says nothing: bounded by *ssl-handshake-timeout*
  ;; (set globally: the server thread sees it)
  (let ((old *ssl-handshake-timeout*))
    (setf *ssl-handshake-timeout* 1)
    (unwind-protect
         (without-leaks (:settle 0.1)
           (multiple-value-bind (port thread)
               (plain-server (lambda (s) (read-byte s nil) (sleep 3)))
             (let* ((t0 (get-internal-real-time))
                    (e (signals ssl-handshake-timeout-error (ask port :verify nil))))
               (is (typep e 'socket-timeout-error))
               ;; a functional bound, far above the 1 s timeout
               (is (< (- (get-internal-real-time) t0) (* 10 internal-time-units-per-second))))
             (join thread))
           (multiple-value-bind (port thread)
               (tls-server #'answer-line :certificate (cert "server.pem") :key (cert "server.key"))
             (with-open-stream (s (socket-connect port "127.0.0.1"))
               (sleep 1.5))
             (let ((r (first (join thread))))
               (is (eq (first r) :ssl))
               (is (typep (second r) 'ssl-handshake-timeout-error)))))
      (setf *ssl-handshake-timeout* old))))

(defun cutting-proxy (target-port cut-after abortive)
  "A TCP proxy to TARGET-PORT that passes the client's octets on and the
server's first CUT-AFTER octets back, then closes the client side (with a
reset when ABORTIVE)."
  (plain-server
   (lambda (client)
     (let* ((upstream (socket-connect target-port "127.0.0.1" :element-type '(unsigned-byte 8)))
            (up (spawn "to server"
                       (lambda ()
                         (ignore-errors
                          (loop with buf = (make-array 4096 :element-type '(unsigned-byte 8))
                                for n = (ext:read-byte-sequence buf client :interactive t)
                                while (plusp n)
                                do (write-sequence buf upstream :end n)
                                   (finish-output upstream)))))))
       (declare (ignorable up))
       (unwind-protect
            (loop with buf = (make-array 4096 :element-type '(unsigned-byte 8))
                  with sent = 0
                  while (< sent cut-after)
                  do (let ((n (ext:read-byte-sequence buf upstream :no-hang nil :interactive t)))
                       (when (zerop n) (return))
                       (let ((k (min n (- cut-after sent))))
                         (write-sequence buf client :end k)
                         (finish-output client)
                         (incf sent k))))
         (when abortive
           (socket-options client :so-linger 0))
         (close upstream :abort t))))))

(deftest cut-mid-record ()
  ;; the server streams 64 MiB; the proxy cuts after ~300 kB, inside a record
  (dolist (abortive '(nil t))
    (without-leaks (:settle 0.3)
      (multiple-value-bind (tport tthread)
          (tls-server (lambda (tls)
                        (ignore-errors
                         (let ((chunk (make-array 65536 :element-type '(unsigned-byte 8)
                                                        :initial-element 7)))
                           (dotimes (i 1024) (write-sequence chunk tls))))
                        :done)
                      :certificate (cert "server.pem") :key (cert "server.key")
                      :verify nil)
        (multiple-value-bind (port pthread) (cutting-proxy tport 300007 abortive)
          (let* ((s (socket-connect port "localhost" :element-type '(unsigned-byte 8) :timeout 10))
                 (tls (make-ssl-client-stream s :ca-file (cert "ca.pem")))
                 (truncated nil)
                 (buf (make-array 65536 :element-type '(unsigned-byte 8)))
                 (total 0))
            (unwind-protect
                 (let ((outcome
                         (handler-case
                             (handler-bind ((ssl-truncated-eof
                                              (lambda (c) (setf truncated (ssl-truncated-eof-stream c)))))
                               (loop for n = (read-sequence buf tls)
                                     do (incf total n)
                                     while (= n (length buf)))
                               :eof)
                           (socket-error (e) e))))
                   (if abortive
                       (is (or (typep outcome 'connection-reset-error)
                               (and (eq outcome :eof) truncated))
                           (format nil "reset: ~A" outcome))
                       (progn
                         (is (eq outcome :eof) (format nil "FIN: ~A" outcome))
                         (is (eq truncated tls) "truncation signalled for this stream")))
                   ;; whatever came before the cut, never more than was passed on
                   (is (< total 300007)))
              (close tls))
            (join pthread)
            (join tthread)))))))

(deftest truncated-eof-is-a-warning ()
  ;; the server's connection ends without close_notify (shutdown(2) under
  ;; the TLS stream): unhandled, the truncation is plain EOF; handled, the
  ;; reader can tell a cut stream from a complete one
  (without-leaks (:settle 0.1)
    (dolist (handle '(nil t))
      (multiple-value-bind (port thread)
          (tls-server (lambda (tls)
                        (write-line "partial" tls)
                        (finish-output tls)
                        (eclsock::%shutdown-fd (eclsock::%stream-fd tls) 2)
                        :cut)
                      :certificate (cert "server.pem") :key (cert "server.key"))
        (let* ((s (socket-connect port "localhost" :timeout 10))
               (tls (make-ssl-client-stream s :ca-file (cert "ca.pem"))))
          (unwind-protect
               (progn
                 (is (equal (read-line tls) "partial"))
                 (if handle
                     (let ((c (handler-case (read-line tls nil :eof)
                                (ssl-truncated-eof (c) c))))
                       (is (typep c 'ssl-truncated-eof))
                       (is (typep c 'warning))
                       (is (eq (ssl-truncated-eof-stream c) tls))
                       (is (search "without close_notify" (princ-to-string c))))
                     (is (eq :eof (read-line tls nil :eof))))
                 ;; EOF stays EOF, and the warning comes once
                 (is (eq :eof (handler-case (read-line tls nil :eof)
                                (ssl-truncated-eof () :again)))))
            (close tls))
          (is (equal (join thread) '(:cut))))))))

(deftest close-sends-close-notify ()
  ;; the Python peer reads to EOF and then unwraps: a clean close_notify
  ;; from our close lets it say EOF (not an SSL error)
  (without-leaks (:settle 0.1)
    (multiple-value-bind (port thread)
        (tls-server (lambda (tls) (answer-line tls) (read-line tls nil) :closed)
                    :certificate (cert "server.pem") :key (cert "server.key"))
      (let ((p (python-peer "client" "lines" "--port" (princ-to-string port) "--ca" (cert "ca.pem"))))
        (is (wait-for-line p "GOT you said: hello"))
        (finish-program p)
        (is (wait-for-line p "EOF 0" 1) (format nil "clean EOF: ~S" (program-output p))))
      (is (equal (join thread) '(:closed))))))

;;; Last: a module configured --without-openssl has no TLS to test (its
;;; functions signal SSL-UNAVAILABLE-ERROR, which check_embed checks), so
;;; the whole file is skipped, and says why.
(unless (third (multiple-value-list (eclsock::%ssl-counts)))
  (skip-test-file "ecl-sock was configured --without-openssl"))
