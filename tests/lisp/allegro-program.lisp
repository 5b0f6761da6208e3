;;;; allegro-program.lisp - a small program written the Allegro CL way,
;;;; loaded unchanged by test-allegro.lisp: SOCKET's Allegro names,
;;;; HANDLER-CASE on EXCL:SOCKET-ERROR and its readers, MP:WITH-TIMEOUT
;;;; around connects, MP:PROCESS-RUN-FUNCTION for the server side.

(require :sock)

(defpackage :acl-program
  (:use :common-lisp)
  (:export #:try-connect #:echo-once))

(in-package :acl-program)

(defun try-connect (port seconds)
  "Connect to PORT on 127.0.0.1 giving up after SECONDS; report how it went."
  (handler-case
      (mp:with-timeout (seconds :timed-out)
        (socket:with-pending-connect
          (let ((sock (socket:make-socket :remote-host "127.0.0.1"
                                          :remote-port port)))
            (close sock)
            :connected)))
    (excl:socket-error (c)
      (list :error (excl:stream-error-identifier c)
            (excl:stream-error-code c)))))

(defun echo-once (text)
  "Start a one-shot echo server in a thread, send it TEXT, return the echo."
  (let* ((passive (socket:make-socket :connect :passive
                                      :local-host "127.0.0.1"))
         (server (mp:process-run-function
                  "acl echo"
                  (lambda ()
                    (let ((s (socket:accept-connection passive)))
                      (unwind-protect
                           (progn (write-line (read-line s) s)
                                  (force-output s))
                        (close s)))))))
    (unwind-protect
         (let ((s (socket:make-socket :remote-host "localhost"
                                      :remote-port (socket:local-port passive))))
           (unwind-protect
                (progn (write-line text s)
                       (force-output s)
                       (read-line s))
             (close s)))
      (mp:process-join server)
      (close passive))))
