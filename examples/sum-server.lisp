;;;; sum-server.lisp - a sum server written against Allegro's socket API.
;;;;
;;;; Each client sends two Lisp numbers; the server answers their sum
;;;; (integers, ratios, floats, complex numbers) and closes the connection.
;;;; Run:   ecl -norc -shell examples/sum-server.lisp PORT [--max N]
;;;; PORT 0 lets the kernel choose; the port is printed as "sum-server
;;;; listening on port N".  With --max N the server stops by itself after
;;;; serving N clients; without, it runs until killed.  It listens on
;;;; 127.0.0.1 only.  Try it with examples/sum-client.lisp.
;;;; At most --max-clients clients (default 64) are served at once; the
;;;; others get (:error "busy, try later") and are closed.  A client has
;;;; --idle seconds (default 30) to send each number.  A thread that cannot
;;;; be made (storage exhausted) refuses that client only.

(require :sock)

(defpackage "SUM-SERVER" (:use "CL" "SOCKET"))
(in-package "SUM-SERVER")

(defvar *active-lock* (mp:make-lock :name "active clients"))
(defvar *active* 0 "Client threads running now.")
(defparameter *max-clients* 64 "Clients served at once; the others are refused.")
(defparameter *idle* 30 "Seconds a client may take to send its two numbers.")

(defun count-active (delta)
  (mp:with-lock (*active-lock*) (incf *active* delta)))

(defun refuse (stream why)
  "Tell STREAM the server is busy and close it, without waiting for the client."
  (ignore-errors (format stream "(:error \"busy, try later\")~%") (force-output stream))
  (ignore-errors (close stream :abort t))
  (format *error-output* "sum-server: refused a client: ~A~%" why))

(defun serve-client (stream)
  "Read two numbers from STREAM and answer their sum (or an error line)."
  (unwind-protect (serve-client-1 stream)
    (count-active -1)))

(defun serve-client-1 (stream)
  (with-open-stream (s stream)
    (handler-case
        (let* ((*read-eval* nil)
               (a (mp:with-timeout (*idle* :idle) (read s)))
               (b (mp:with-timeout (*idle* :idle) (read s))))
          (if (and (numberp a) (numberp b))
              (format s "~S~%" (+ a b))
              (format s "(:error \"two numbers, please\")~%"))
          (force-output s))
      (serious-condition (e)
        (format *error-output* "sum-server: client failed: ~A~%" e)))))

(defun serve (port max-clients)
  "Answer sums on PORT; stop after MAX-CLIENTS clients (NIL: never)."
  (let* ((server (make-socket :connect :passive :local-host "127.0.0.1"
                              :local-port port :reuse-address t))
         (workers '())
         (served 0))
    (format t "sum-server listening on port ~D~%" (local-port server))
    (finish-output)
    (unwind-protect
         (loop while (or (null max-clients) (< served max-clients))
               do (let ((client (accept-connection server)))
                    (incf served)
                    (cond ((>= (count-active 0) *max-clients*)
                           (refuse client (format nil "~D clients already" *max-clients*)))
                          (t
                           (count-active 1)
                           (handler-case
                               (push (mp:process-run-function "sum client"
                                                              #'serve-client client)
                                     workers)
                             (serious-condition (e) ; e.g. STORAGE-EXHAUSTED
                               (count-active -1)
                               (refuse client e)))))
                    ;; forget the workers that are done
                    (setf workers (delete-if-not #'mp:process-active-p workers))))
      (mapc #'mp:process-join workers)
      (close server))
    (format t "sum-server served ~D client~:P, bye~%" served)
    (finish-output)))

(defun main (args)
  "ARGS: PORT [--max N] [--max-clients N] [--idle SECONDS]."
  (let* ((port (and args (ignore-errors (parse-integer (first args)))))
         (options (rest args))
         (ok (and port (<= 0 port 65535) (evenp (length options))))
         (max nil))
    (loop for (name value) on options by #'cddr
          for n = (ignore-errors (parse-integer value))
          do (cond ((not (and n (plusp n))) (setf ok nil))
                   ((string= name "--max") (setf max n))
                   ((string= name "--max-clients") (setf *max-clients* n))
                   ((string= name "--idle") (setf *idle* n))
                   (t (setf ok nil))))
    (if ok
        (serve port max)
        (progn
          (format *error-output* "usage: sum-server.lisp PORT [--max N] [--max-clients N] [--idle SECONDS]~%")
          (ext:quit 2)))))

(main (cddr (member "-shell" ext:*command-args* :test #'string=)))
