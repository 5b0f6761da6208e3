;;;; sbcl-cycles.lisp - `make bench`'s connection cycles on SBCL itself
;;;; (Debian's sbcl, its own sb-bsd-sockets), the outside reference for
;;;; ecl-sock's "cycles" row.
;;;;
;;;; Owns: sbcl --script bench/sbcl-cycles.lisp N: a server process (this
;;;; script again, role "server", started with run-program) accepts N
;;;; connections on 127.0.0.1 and closes each at once (SOCKET-MAKE-STREAM
;;;; first, as the ECL workloads make a stream); the client connects N
;;;; times, makes a stream, reads end of file and closes; prints cycles/s.
;;;; Must not: assert a time (a benchmark); talk to anything but 127.0.0.1.
(require :sb-bsd-sockets)
(defpackage "SBCL-CYCLES" (:use "CL" "SB-BSD-SOCKETS"))
(in-package "SBCL-CYCLES")

(defun stream-of (socket)
  (socket-make-stream socket :input t :output t :element-type 'character
                             :buffering :full))

(defun serve (n)
  (let ((l (make-instance 'inet-socket :type :stream :protocol :tcp)))
    (setf (sockopt-reuse-address l) t)
    (socket-bind l #(127 0 0 1) 0)
    (socket-listen l 1024)
    (format t "PORT ~D~%" (nth-value 1 (socket-name l)))
    (finish-output)
    (dotimes (i n)
      (let ((s (socket-accept l)))
        (stream-of s)
        (socket-close s)))
    (socket-close l)))

(defun client (n)
  (let* ((p (sb-ext:run-program sb-ext:*runtime-pathname*
                                (list "--script" (namestring *load-truename*) "server"
                                      (princ-to-string n))
                                :output :stream :wait nil))
         (line (read-line (sb-ext:process-output p)))
         (port (parse-integer line :start 5))
         (t0 (get-internal-real-time)))
    (dotimes (i n)
      (let ((s (make-instance 'inet-socket :type :stream :protocol :tcp)))
        (socket-connect s #(127 0 0 1) port)
        (unless (eq (read-char (stream-of s) nil :eof) :eof)
          (error "expected end of file"))
        (socket-close s)))
    (let ((secs (/ (- (get-internal-real-time) t0) internal-time-units-per-second)))
      (sb-ext:process-wait p)
      (format t "~,1F~%" (/ n secs)))))

(let ((args (cdr sb-ext:*posix-argv*)))
  (if (equal (first args) "server")
      (serve (parse-integer (second args)))
      (client (parse-integer (first args)))))
