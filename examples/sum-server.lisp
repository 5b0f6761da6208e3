;;;; sum-server.lisp - a sum server written against Allegro's socket API.
;;;;
;;;; Each client sends two Lisp numbers; the server answers their sum
;;;; (integers, ratios, floats, complex numbers) and closes the connection.
;;;; Run:   ecl -norc -shell examples/sum-server.lisp [PORT [MAX-CLIENTS]]
;;;; PORT 0 (the default) lets the kernel choose; the port is printed as
;;;; "sum-server listening on port N".  With MAX-CLIENTS the server stops by
;;;; itself after serving that many clients; without, it runs until killed.
;;;; Try it with examples/sum-client.lisp.

(require :sock)

(defpackage "SUM-SERVER" (:use "CL" "SOCKET"))
(in-package "SUM-SERVER")

(defun arg (n default)
  "The Nth argument after the script name, read as an integer."
  (let ((args (rest (member-if (lambda (a) (search "sum-server" a))
                               ext:*command-args*))))
    (if (nth n args) (parse-integer (nth n args)) default)))

(defun serve-client (stream)
  "Read two numbers from STREAM and answer their sum (or an error line)."
  (with-open-stream (s stream)
    (handler-case
        (let* ((*read-eval* nil)
               (a (read s))
               (b (read s)))
          (if (and (numberp a) (numberp b))
              (format s "~S~%" (+ a b))
              (format s "(:error \"two numbers, please\")~%"))
          (force-output s))
      (error (e)
        (format *error-output* "sum-server: client failed: ~A~%" e)))))

(defun main ()
  (let* ((port (arg 0 0))
         (max-clients (arg 1 nil))
         (server (make-socket :connect :passive :local-host "127.0.0.1"
                              :local-port port :reuse-address t))
         (workers '()))
    (format t "sum-server listening on port ~D~%" (local-port server))
    (finish-output)
    (unwind-protect
         (loop for served from 0
               while (or (null max-clients) (< served max-clients))
               do (let ((client (accept-connection server)))
                    (push (mp:process-run-function "sum client"
                                                   #'serve-client client)
                          workers)))
      (mapc #'mp:process-join workers)
      (close server))
    (format t "sum-server served ~D client~:P, bye~%" (length workers))
    (finish-output)))

(main)
