;;;; http-stub.lisp - a tiny HTTP server on 127.0.0.1:$PORT for usocket's suite.
;;;;
;;;; Owns: answering usocket's tests that fetch "/" from common-lisp.net,
;;;; which tests/usocket/inside.sh maps to 127.0.0.1 in a private network
;;;; namespace.  Each connection: read the request up to the blank line,
;;;; answer "HTTP/1.0 200 OK", close.  Nothing is sent before a request
;;;; (usocket's wait-for-input tests count on it).  Writes $READY when
;;;; listening; stops by itself after $LIFETIME seconds (default 900).
;;;; Must not: listen anywhere but 127.0.0.1.
(let ((fas (ext:getenv "SOCK_FAS")))
  (if fas (load fas :verbose nil) (require :sock)))
(let* ((port (parse-integer (or (ext:getenv "PORT") "80")))
       (lifetime (parse-integer (or (ext:getenv "LIFETIME") "900")))
       (server (socket:socket-server port :interface "127.0.0.1" :backlog 64))
       (end (+ (get-universal-time) lifetime)))
  (with-open-file (r (ext:getenv "READY") :direction :output :if-exists :supersede)
    (write-line "ready" r))
  (loop while (< (get-universal-time) end)
        do (when (socket:socket-wait server 1)
             (let ((s (socket:socket-accept server)))
               (mp:process-run-function
                "client"
                (lambda ()
                  (ignore-errors
                   (unwind-protect
                        (progn
                          (loop for line = (read-line s nil nil)
                                while (and line (plusp (length (string-right-trim '(#\Return) line)))))
                          (format s "HTTP/1.0 200 OK~C~CContent-Type: text/plain~C~CContent-Length: 3~C~C~C~Cok~%"
                                  #\Return #\Linefeed #\Return #\Linefeed #\Return #\Linefeed
                                  #\Return #\Linefeed)
                          (finish-output s))
                     (close s)))))))))
  (ext:quit 0))
