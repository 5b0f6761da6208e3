;;;; sum-server.lisp - a sum server written against Allegro's socket API.
;;;;
;;;; Each client sends two Lisp numbers; the server answers their sum
;;;; (integers, ratios, floats, complex numbers) and closes the connection.
;;;; Run:   ecl -norc -shell examples/sum-server.lisp PORT [--max N]
;;;; PORT 0 lets the kernel choose; the port is printed as "sum-server
;;;; listening on port N".  With --max N the server stops by itself after
;;;; serving N clients; without, it runs until killed.  It listens on
;;;; 127.0.0.1 only.  Try it with examples/sum-client.lisp.

(require :sock)

(defpackage "SUM-SERVER" (:use "CL" "SOCKET"))
(in-package "SUM-SERVER")

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
                    (push (mp:process-run-function "sum client"
                                                   #'serve-client client)
                          workers)
                    ;; forget the workers that are done
                    (setf workers (delete-if-not #'mp:process-active-p workers))))
      (mapc #'mp:process-join workers)
      (close server))
    (format t "sum-server served ~D client~:P, bye~%" served)
    (finish-output)))

(defun main (args)
  "ARGS: PORT [--max N]."
  (let ((port (and args (ignore-errors (parse-integer (first args)))))
        (max (and (= (length args) 3) (string= (second args) "--max")
                  (ignore-errors (parse-integer (third args))))))
    (if (and port (<= 0 port 65535)
             (or (= (length args) 1) (and max (plusp max))))
        (serve port max)
        (progn
          (format *error-output* "usage: sum-server.lisp PORT [--max N]~%")
          (ext:quit 2)))))

(main (cddr (member "-shell" ext:*command-args* :test #'string=)))
