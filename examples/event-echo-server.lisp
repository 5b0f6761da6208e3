;;;; event-echo-server.lisp - a line echo server in ONE thread on the
;;;; poller (SOCKET:MAKE-POLLER), holding as many connections as the
;;;; descriptor limit allows (10,000 and more).
;;;;
;;;; Run:  ecl -norc -shell examples/event-echo-server.lisp 7007
;;;; then: ecl -norc -shell examples/echo-client.lisp 127.0.0.1 7007
;;;;
;;;; Arguments: PORT (0: any free port; the first line printed says
;;;; which), then --interface ADDR (default 127.0.0.1) and --max N (stop
;;;; after N connections have closed; default never).  Raise the
;;;; descriptor limit first for many connections (ulimit -n 20000).
;;;;
;;;; One POLLER-WAIT per round: its cost grows with the connections that
;;;; are ready, not with the ones held, so idle connections are cheap.
;;;; Reads never block the one thread: a line that arrives in pieces is
;;;; collected with READ-CHAR-NO-HANG until its newline comes.

(require :sock)

(defpackage "EVENT-ECHO-SERVER" (:use "CL" "SOCKET"))
(in-package "EVENT-ECHO-SERVER")

(defvar *partial* (make-hash-table :test 'eq)
  "Connection -> the start of a line that has not ended yet.")

(defun echo-ready (stream)
  "Echo every complete line waiting on STREAM without blocking.  Returns
NIL when the peer has closed."
  (loop
    (let ((ch (read-char-no-hang stream nil :eof)))
      (case ch
        ((nil) (force-output stream) (return t))     ; nothing more for now
        (:eof (return nil))
        (#\Newline
         (let ((start (gethash stream *partial*)))
           (when start
             (write-string start stream)
             (remhash stream *partial*))
           (terpri stream)))                         ; terpri also forces output
        (t (let ((start (or (gethash stream *partial*)
                            (setf (gethash stream *partial*)
                                  (make-array 16 :element-type 'character
                                                 :adjustable t :fill-pointer 0)))))
             (vector-push-extend ch start)))))))

(defun serve (port &key (interface "127.0.0.1") max)
  (let ((server (socket-server port :interface interface :backlog 1024))
        (closed 0)
        (held 0)
        (most 0))
    (format t "listening on ~A:~D~%" (socket-server-host server) (socket-server-port server))
    (finish-output)
    (with-poller (poller)
      (poller-add poller server)
      (unwind-protect
           (loop until (and max (>= closed max))
                 do (dolist (ready (poller-wait poller))
                      (destructuring-bind (object . status) ready
                        (cond ((eq object server)
                               ;; take every connection that is waiting
                               (loop while (socket-wait server 0)
                                     do (poller-add poller (socket-accept server))
                                        (setf most (max most (incf held)))))
                              ((and (member status '(:input :io))
                                    (handler-case (echo-ready object)
                                      (error () nil))))
                              (t                      ; :eof, :error, or a failed echo
                               (remhash object *partial*)
                               (close object)         ; leaves the poller by itself
                               (decf held)
                               (incf closed))))))
        (socket-server-close server)))
    (format t "served ~D connection~:P, at most ~D at once~%" closed most)
    (finish-output)))

(defun main (args)
  (flet ((option (name)
           (second (member name args :test #'string=))))
    (if (null args)
        (format *error-output* "usage: event-echo-server.lisp PORT [--interface ADDR] [--max N]~%")
        (serve (parse-integer (first args))
               :interface (or (option "--interface") "127.0.0.1")
               :max (let ((m (option "--max"))) (and m (parse-integer m)))))))

(main (cddr (member "-shell" ext:*command-args* :test #'string=)))
