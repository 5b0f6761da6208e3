;;;; echo-server.lisp - a line echo server in ONE thread on the poller
;;;; (SOCKET:MAKE-POLLER, an ecl-sock extension), holding as many
;;;; connections as the descriptor limit allows (10,000 and more).
;;;;
;;;; Run:  ecl -norc -shell examples/echo-server.lisp 7007
;;;; then: ecl -norc -shell examples/echo-client.lisp 127.0.0.1 7007
;;;;
;;;; Arguments: PORT (0: any free port; the first line printed says
;;;; which), then --interface ADDR (default 127.0.0.1), --max N (stop
;;;; after N connections have closed; default never), --idle SECONDS (a
;;;; client silent that long is dropped, default 300) and --quiet (no log
;;;; line per connection).  Raise the descriptor limit first for many
;;;; connections (ulimit -n 20000).
;;;;
;;;; One POLLER-WAIT per round: its cost grows with the connections that
;;;; are ready, not with the ones held, so idle connections are cheap and
;;;; a flood of them delays nobody.  Reads never block the one thread: a
;;;; line that arrives in pieces is collected with READ-CHAR-NO-HANG until
;;;; its newline comes.  Idle timeouts are the poller's idle clocks
;;;; (MAKE-POLLER :IDLE, POLLER-TOUCH): a deadline queue inside the
;;;; poller; the wait lasts until the first deadline and reports the
;;;; clients whose clock ran out as :IDLE.

(require :sock)

(defpackage "ECHO-SERVER" (:use "CL" "SOCKET"))
(in-package "ECHO-SERVER")

(defstruct client
  peer                                  ; "host:port", for the log
  (lines 0)
  (partial nil))                        ; the start of an unfinished line

(defvar *clients* (make-hash-table :test 'eq) "Stream -> CLIENT.")
(defvar *quiet* nil)

(defun log-line (control &rest args)
  (format t "~?~%" control args)
  (finish-output))

;;; Connections

(defun add-client (poller stream)
  (let ((c (make-client
            :peer (multiple-value-bind (host port) (socket-stream-peer stream t)
                    (format nil "~A:~D" host port)))))
    (setf (gethash stream *clients*) c)
    (poller-add poller stream)
    (poller-touch poller stream)
    (unless *quiet* (log-line "~A connected" (client-peer c)))))

(defun drop-client (stream why)
  (let ((c (gethash stream *clients*)))
    (remhash stream *clients*)
    (ignore-errors (close stream :abort t))   ; leaves the poller by itself
    (unless *quiet*
      (log-line "~A ~A after ~D line~:P" (client-peer c) why (client-lines c)))))

(defun echo-ready (stream c)
  "Echo every complete line waiting on STREAM without blocking.  Returns
NIL when the peer has closed."
  (loop
    (let ((ch (read-char-no-hang stream nil :eof)))
      (case ch
        ((nil) (force-output stream) (return t))     ; nothing more for now
        (:eof (return nil))
        (#\Newline
         (when (client-partial c)
           (write-string (client-partial c) stream)
           (setf (fill-pointer (client-partial c)) 0))
         (terpri stream)
         (incf (client-lines c)))
        (t (vector-push-extend ch (or (client-partial c)
                                      (setf (client-partial c)
                                            (make-array 16 :element-type 'character
                                                           :adjustable t :fill-pointer 0)))))))))

(defun serve (port &key (interface "127.0.0.1") max (idle 300))
  (let ((server (socket-server port :interface interface :backlog 1024))
        (closed 0) (most 0))
    (log-line "echo-server: listening on ~A:~D" (socket-server-host server)
              (socket-server-port server))
    (with-poller (poller :idle idle)
      (poller-add poller server)
      (unwind-protect
           (loop until (and max (>= closed max))
                 do (dolist (ready (poller-wait poller))
                      (destructuring-bind (object . status) ready
                        (cond ((eq object server)
                               ;; take every connection that is waiting
                               (loop while (socket-wait server 0)
                                     do (handler-case (add-client poller (socket-accept server))
                                          (socket-error (e) (log-line "accept: ~A" e) (return)))
                                        (setf most (max most (hash-table-count *clients*)))))
                              ((not (gethash object *clients*))) ; dropped this round
                              ((eq status :idle)
                               (drop-client object (format nil "dropped (idle ~A s)" idle))
                               (incf closed))
                              ((member status '(:input :io))
                               (let ((c (gethash object *clients*)))
                                 (if (handler-case (echo-ready object c)
                                       (error (e)
                                         (drop-client object (format nil "dropped (~A)" e))
                                         (incf closed)
                                         (setf c nil)))
                                     (poller-touch poller object)
                                     (when c            ; end of file
                                       (drop-client object "closed")
                                       (incf closed)))))
                              (t                        ; :eof, :error
                               (drop-client object "closed")
                               (incf closed))))))
        (loop for stream being the hash-keys of *clients* do (drop-client stream "closed by the server"))
        (socket-server-close server)))
    (log-line "echo-server: served ~D connection~:P, at most ~D at once" closed most)))

(defun main (args)
  (flet ((option (name)
           (second (member name args :test #'string=))))
    (if (null args)
        (format *error-output* "usage: echo-server.lisp PORT [--interface ADDR] [--max N] [--idle SECONDS] [--quiet]~%")
        (let ((*quiet* (member "--quiet" args :test #'string=)))
          (serve (parse-integer (first args))
                 :interface (or (option "--interface") "127.0.0.1")
                 :max (let ((m (option "--max"))) (and m (parse-integer m)))
                 :idle (read-from-string (or (option "--idle") "300")))))))

(main (cddr (member "-shell" ext:*command-args* :test #'string=)))
