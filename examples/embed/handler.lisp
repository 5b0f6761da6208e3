;;;; handler.lisp - the Lisp side of examples/embed/accept-host.c.
;;;;
;;;; The C host accepts connections itself and calls HANDLE-CLIENT, in one
;;;; of its own threads, with each connection wrapped as a socket stream.
;;;; The protocol is line based: every line comes back upper-cased and
;;;; numbered; "quit" ends the conversation; "boom" makes the handler fail
;;;; with a Lisp error, which the host reports without dying.

(defun handle-client (stream)
  "Serve one connection on socket STREAM; return how many lines were answered."
  (format stream "hello ~A, this is Lisp~%" (socket:socket-stream-peer stream t))
  (finish-output stream)
  (loop for line = (read-line stream nil)
        for n from 0
        while line
        do (cond ((string-equal line "quit")
                  (write-line "bye" stream)
                  (finish-output stream)
                  (return n))
                 ((string-equal line "boom")
                  (error "client ~A asked for an error"
                         (socket:socket-stream-peer stream t)))
                 (t
                  (format stream "~D: ~A~%" (1+ n) (string-upcase line))
                  (finish-output stream)))
        finally (return n)))
