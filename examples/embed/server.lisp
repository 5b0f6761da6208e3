;;;; server.lisp - the Lisp side of examples/embed/lisp-server.c.
;;;;
;;;; START-SERVER opens a server with the CLISP-style SOCKET API and serves
;;;; it from a Lisp thread; the C host talks to it over loopback.  The
;;;; protocol is a tiny key-value store, one command per line:
;;;;   SET key value   -> OK
;;;;   GET key         -> the value, or NONE
;;;;   QUIT            -> BYE, and the connection ends
;;;;   STOP            -> STOPPED, and the server ends
;;;; The server also ends by itself after 60 idle seconds.

(defvar *table* (make-hash-table :test 'equal)
  "The store, shared by all connections.")

(defvar *server-process* nil
  "The Lisp thread serving connections, once START-SERVER ran.")

(defun split-command (line)
  "LINE as (COMMAND KEY VALUE), missing parts NIL."
  (let* ((a (position #\Space line))
         (b (and a (position #\Space line :start (1+ a)))))
    (list (string-upcase (subseq line 0 a))
          (and a (subseq line (1+ a) b))
          (and b (subseq line (1+ b))))))

(defun serve-connection (stream)
  "Answer commands on STREAM; true when the client asked the server to stop."
  (loop for line = (read-line stream nil)
        while line
        do (destructuring-bind (command key value) (split-command line)
             (flet ((answer (text) (write-line text stream) (finish-output stream)))
               (cond ((string= command "SET")
                      (setf (gethash key *table*) value)
                      (answer "OK"))
                     ((string= command "GET")
                      (answer (gethash key *table* "NONE")))
                     ((string= command "QUIT")
                      (answer "BYE")
                      (return nil))
                     ((string= command "STOP")
                      (answer "STOPPED")
                      (return t))
                     (t (answer (format nil "ERROR unknown command ~A" command))))))))

(defun start-server ()
  "Open a server on 127.0.0.1 (port chosen by the kernel), serve it from a
new Lisp thread, and return the port."
  (let ((server (socket:socket-server 0 :interface "127.0.0.1")))
    (setf *server-process*
          (mp:process-run-function
           "key-value server"
           (lambda ()
             (unwind-protect
                  (loop
                    (let ((stream (socket:socket-accept server :timeout 60)))
                      (unless stream (return))          ; idle too long
                      (when (with-open-stream (s stream)
                              (handler-case (serve-connection s)
                                (error (e)
                                  (format *error-output* "server: ~A~%" e)
                                  nil)))
                        (return))))
               (socket:socket-server-close server)))))
    (socket:socket-server-port server)))

(defun wait-server ()
  "Wait until the server thread has ended."
  (when *server-process*
    (mp:process-join *server-process*)
    t))
