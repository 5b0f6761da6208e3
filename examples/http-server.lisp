;;;; http-server.lisp - a small HTTP/0.9 file server, written against
;;;; CLOCC's PORT package, that is safe to leave running.
;;;;
;;;; Run:  ecl -norc -shell examples/http-server.lisp 8080 examples/www
;;;; then: ecl -norc -shell examples/http-client.lisp 127.0.0.1 8080 /hello.txt
;;;;   or: curl --http0.9 http://127.0.0.1:8080/hello.txt
;;;;
;;;; Arguments: PORT (0: any free port; the log's first line says which),
;;;; ROOT (the directory served), then options:
;;;;   --interface ADDR   address to listen on (default 127.0.0.1)
;;;;   --max N            stop after N connections (default: never)
;;;;   --idle SECONDS     drop a client that has not sent its request (default 10)
;;;;   --max-clients N    clients served at once (default 64); the others get
;;;;                      "503 Service Unavailable" at once and are closed
;;;;
;;;; A request is "GET /path" or "GET /path HTTP/x.y" followed by header
;;;; lines up to a blank line.  The answer is the file's lines, each ended
;;;; by CR LF, or one line "400 Bad Request" / "404 Not Found".
;;;;
;;;; What makes it safe: it serves only plain files under ROOT (path
;;;; components are checked one by one, and the file's true name, after
;;;; symbolic links, must still be under ROOT's); a request line longer
;;;; than 8 KiB is refused; a client that sends nothing for --idle seconds
;;;; is dropped; every client runs in its own process, and whatever goes
;;;; wrong with one client (it vanishes, it sends junk) is logged and ends
;;;; only that client.  A flood of idle connections cannot take it down:
;;;; at most --max-clients processes exist at once (ECL runs out of thread
;;;; storage at a few hundred), the rest are refused with a 503 line, and
;;;; a process that cannot be made (storage exhausted) refuses that client
;;;; only; the listener goes on.

(require :sock)

(defpackage "HTTP09-SERVER" (:use "CL" "PORT"))
(in-package "HTTP09-SERVER")

(defparameter *max-line* 8192 "Longest request or header line, in characters.")
(defparameter *max-headers* 100 "Most header lines read after a request line.")
(defvar *log-lock* (make-lock :name "log"))
(defvar *active-lock* (make-lock :name "active clients"))
(defvar *active* 0 "Client processes running now.")

(defun count-active (delta)
  (with-lock (*active-lock*) (incf *active* delta)))

(defun log-line (control &rest args)
  "Print one line to the log (standard output), whole, whichever thread calls."
  (multiple-value-bind (s m h d mo y) (decode-universal-time (get-universal-time) 0)
    (with-lock (*log-lock*)
      (format t "~D-~2,'0D-~2,'0D ~2,'0D:~2,'0D:~2,'0DZ ~?~%" y mo d h m s control args)
      (finish-output))))

(defun printable (text)
  "TEXT fit for one log line: control characters shown as ?, at most 120 characters."
  (let ((clean (map 'string (lambda (ch) (if (< 31 (char-code ch) 127) ch #\?)) text)))
    (if (> (length clean) 120) (concatenate 'string (subseq clean 0 120) "...") clean)))

;;; Requests

(defun read-line-capped (stream)
  "The next line of STREAM without its CR LF; :TOO-LONG when longer than
*MAX-LINE*; NIL when the client closes before the end of the line."
  (let ((line (make-string-output-stream)))
    (loop for n from 0
          for ch = (read-char stream nil)
          do (cond ((null ch) (return nil))
                   ((char= ch #\Newline)
                    (return (string-right-trim '(#\Return) (get-output-stream-string line))))
                   ((>= n *max-line*) (return :too-long))
                   (t (write-char ch line))))))

(defun words (line)
  (loop with start = 0
        for space = (position #\Space line :start start)
        collect (subseq line start space)
        while space do (setf start (1+ space))))

(defun parse-request (line)
  "The path of a GET request line, and whether headers follow (the line
names an HTTP version).  NIL for anything else."
  (let ((w (words line)))
    (when (and (string= (first w) "GET")
               (or (= (length w) 2)
                   (and (= (length w) 3)
                        (eql 0 (search "HTTP/" (third w))))))
      (values (second w) (= (length w) 3)))))

(defun safe-name-p (name)
  "A path component we serve: letters, digits, - _ and dots, not starting with a dot."
  (and (plusp (length name))
       (char/= (char name 0) #\.)
       (every (lambda (ch) (or (char<= #\a ch #\z) (char<= #\A ch #\Z)
                               (char<= #\0 ch #\9) (find ch "-_.")))
              name)))

(defun request-file (path root)
  "The file under ROOT (a truename) that PATH names: :BAD when PATH is not
/name/name..., NIL when there is no such plain file inside ROOT."
  (let ((names (and (plusp (length path)) (char= (char path 0) #\/)
                    (words (substitute #\Space #\/ (subseq path 1))))))
    (when (equal (car (last names)) "")        ; "/" or "/dir/": its index
      (setf names (append (butlast names) (list "index.html"))))
    (if (or (null names) (notevery #'safe-name-p names))
        :bad
        (let ((true (probe-file (merge-pathnames (format nil "~{~A~^/~}" names) root))))
          (and true
               (pathname-name true)             ; a file, not a directory
               (let ((r (namestring root)) (f (namestring true)))
                 (and (> (length f) (length r)) (string= r f :end2 (length r))))
               true)))))

;;; Answers

(defun send-line (text stream)
  (write-string text stream)
  (write-char #\Return stream)
  (write-char #\Linefeed stream))

(defun send-file (file stream)
  "Send FILE's lines, each ended by CR LF; return how many."
  (with-open-file (in file :external-format :utf-8)
    (loop for line = (read-line in nil)
          while line count t do (send-line line stream))))

(defun read-request (sock)
  "Read a request from SOCK: its line and path, or a keyword saying what is wrong."
  (let ((line (read-line-capped sock)))
    (case line
      ((nil) (values :gone "(nothing)"))
      (:too-long (values :too-long "(over 8 KiB)"))
      (t (multiple-value-bind (path headers-follow) (parse-request line)
           (when headers-follow                 ; skip them, up to the blank line
             (loop for header = (read-line-capped sock)
                   for n from 1
                   until (equal header "")
                   do (when (or (not (stringp header)) (> n *max-headers*))
                        (return-from read-request
                          (values (if header :too-long :gone) line)))))
           (values (or path :bad) line))))))

(defun serve-client (sock root idle)
  "Answer one request on SOCK and close it.  Nothing escapes: every failure is logged."
  (unwind-protect (serve-client-1 sock root idle)
    (count-active -1)))

(defun refuse (sock why)
  "Answer SOCK with 503 and close it, from the listener: a short line the
kernel buffers, and a close that never waits for the client."
  (ignore-errors (send-line "503 Service Unavailable" sock) (finish-output sock))
  (ignore-errors (close sock :abort t))
  (log-line "refused: ~A" why))

(defun serve-client-1 (sock root idle)
  (let ((peer "?") (request "(none)") (outcome "?"))
    (handler-case
        (progn
          (multiple-value-bind (host port) (socket-host/port sock)
            (setf peer (format nil "~A:~D" host port)))
          (multiple-value-bind (path line)
              (with-timeout (idle (values :idle "(idle)"))
                (read-request sock))
            (setf request line)
            (setf outcome
                  (case path
                    (:idle "dropped: idle")
                    (:gone "dropped: client left")
                    (:too-long (send-line "400 Bad Request" sock) "400 too long")
                    (:bad (send-line "400 Bad Request" sock) "400")
                    (t (let ((file (request-file path root)))
                         (case file
                           (:bad (send-line "400 Bad Request" sock) "400")
                           ((nil) (send-line "404 Not Found" sock) "404")
                           (t (format nil "200 ~D lines"
                                      (with-timeout ((* 10 idle) (error "sending took too long"))
                                        (send-file file sock)))))))))
            (finish-output sock)))
      (serious-condition (c)
        (setf outcome (format nil "failed: ~A" (printable (princ-to-string c))))))
    (ignore-errors (close sock :abort t))
    (log-line "~A ~S ~A" peer (printable request) outcome)))

;;; The server

(defun serve (port root &key (interface "127.0.0.1") max (idle 10) (max-clients 64))
  "Serve ROOT on INTERFACE:PORT, one process per client (at most
MAX-CLIENTS at once), MAX connections \(NIL: forever)."
  (let* ((root (or (probe-file (concatenate 'string (string-right-trim "/" root) "/"))
                   (error "~A: no such directory" root)))
         (server (open-socket-server port :interface interface :backlog 64))
         (clients '()))
    (unwind-protect
         (progn
           (multiple-value-bind (host port) (socket-server-host/port server)
             (log-line "http-server: serving ~A, listening on ~A:~D" (namestring root) host port))
           (loop for n from 1
                 while (or (null max) (<= n max))
                 do (let ((sock (handler-case (socket-accept server)
                                  (network (c)    ; e.g. out of descriptors: wait, go on
                                    (log-line "http-server: accept failed: ~A" c)
                                    (sleep 0.1)))))
                      (cond ((null sock))
                            ((>= (count-active 0) max-clients)
                             (refuse sock (format nil "~D clients already" max-clients)))
                            (t
                             (count-active 1)
                             (handler-case
                                 (push (make-process (format nil "http client ~D" n)
                                                     #'serve-client sock root idle)
                                       clients)
                               (serious-condition (c) ; e.g. STORAGE-EXHAUSTED
                                 (count-active -1)
                                 (refuse sock (printable (princ-to-string c)))))
                             (setf clients (remove-if-not #'process-active-p clients)))))))
      (socket-server-close server)
      (process-wait-with-timeout (* 12 idle) "clients" (lambda () (notany #'process-active-p clients)))
      (log-line "http-server: stopped"))))

(defun main (args)
  (flet ((option (name default)
           (let ((tail (member name args :test #'string=)))
             (if tail (second tail) default))))
    (if (< (length args) 2)
        (format *error-output* "usage: http-server.lisp PORT ROOT [--interface ADDR] [--max N] [--idle SECONDS] [--max-clients N]~%")
        (serve (parse-integer (first args)) (second args)
               :interface (option "--interface" "127.0.0.1")
               :max (let ((m (option "--max" nil))) (and m (parse-integer m)))
               :idle (let ((i (option "--idle" nil))) (if i (read-from-string i) 10))
               :max-clients (parse-integer (option "--max-clients" "64"))))))

(main (cddr (member "-shell" ext:*command-args* :test #'string=)))
