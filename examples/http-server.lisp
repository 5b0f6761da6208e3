;;;; http-server.lisp - a small HTTP/0.9 file server, written against
;;;; CLOCC's PORT package, in ONE thread on ecl-sock's poller, that is
;;;; safe to leave running.
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
;;;;
;;;; A request is "GET /path" or "GET /path HTTP/x.y" followed by header
;;;; lines up to a blank line.  The answer is the file's lines, each ended
;;;; by CR LF, or one line "400 Bad Request" / "404 Not Found".
;;;;
;;;; What makes it safe: it serves only plain files under ROOT (path
;;;; components are checked one by one, and the file's true name, after
;;;; symbolic links, must still be under ROOT's); a request or header line
;;;; longer than 8 KiB is refused; a client that sends nothing for --idle
;;;; seconds is dropped; whatever goes wrong with one client (it vanishes,
;;;; it sends junk) is logged and ends only that client.  A flood of idle
;;;; connections cannot crowd out normal clients: every connection waits
;;;; in one poller (SOCKET:MAKE-POLLER, an ecl-sock extension), whose wait
;;;; costs by the connections that are ready, not by the ones held, so
;;;; there is no cap on clients but the descriptor limit (ulimit -n), and
;;;; idle ones cost no thread.  A request may arrive in pieces: each
;;;; connection collects its lines with READ-CHAR-NO-HANG, never blocking
;;;; the one thread, until the request is whole.  Idle timeouts are the
;;;; poller's idle clocks (MAKE-POLLER :IDLE, POLLER-TOUCH).  An answer is
;;;; written at once (a file's lines): a client that asks and does not
;;;; read holds the thread at most --idle seconds once the kernel's
;;;; buffer is full, then it is dropped.

(require :sock)

(defpackage "HTTP09-SERVER"
  (:use "CL" "PORT")
  (:import-from "SOCKET" "WITH-POLLER" "POLLER-ADD" "POLLER-REMOVE" "POLLER-WAIT"
                "POLLER-TOUCH"))
(in-package "HTTP09-SERVER")

(defparameter *max-line* 8192 "Longest request or header line, in characters.")
(defparameter *max-headers* 100 "Most header lines read after a request line.")

(defun log-line (control &rest args)
  "Print one line to the log (standard output)."
  (multiple-value-bind (s m h d mo y) (decode-universal-time (get-universal-time) 0)
    (format t "~D-~2,'0D-~2,'0D ~2,'0D:~2,'0D:~2,'0DZ ~?~%" y mo d h m s control args)
    (finish-output)))

(defun printable (text)
  "TEXT fit for one log line: control characters shown as ?, at most 120 characters."
  (let ((clean (map 'string (lambda (ch) (if (< 31 (char-code ch) 127) ch #\?)) text)))
    (if (> (length clean) 120) (concatenate 'string (subseq clean 0 120) "...") clean)))

;;; Requests, read in pieces: one CLIENT per connection

(defstruct client
  (peer "?")                            ; "host:port", for the log
  (line (make-array 80 :element-type 'character :adjustable t :fill-pointer 0))
  (request nil)                         ; the request line, once whole
  (path nil)                            ; its path, or :BAD
  (headers nil))                        ; header lines read, while they are

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

(defun take-line (c line)
  "Take LINE, a whole line of C's request: NIL while more lines are due,
:READY when the request is whole, :TOO-LONG after too many header lines."
  (cond ((null (client-request c))
         (setf (client-request c) line)
         (multiple-value-bind (path headers-follow) (parse-request line)
           (setf (client-path c) (or path :bad))
           (cond ((and path headers-follow) (setf (client-headers c) 0) nil)
                 (t :ready))))
        ((string= line "") :ready)
        ((> (incf (client-headers c)) *max-headers*) :too-long)))

(defun read-available (sock c)
  "Read what SOCK has now, never waiting: :MORE (the request is not whole
yet), :READY, :TOO-LONG, or :GONE (the client closed first)."
  (loop
    (let ((ch (read-char-no-hang sock nil :eof)))
      (cond ((null ch) (return :more))
            ((eq ch :eof) (return :gone))
            ((char= ch #\Newline)
             (let ((line (string-right-trim '(#\Return) (client-line c))))
               (setf (fill-pointer (client-line c)) 0)
               (let ((done (take-line c line)))
                 (when done (return done)))))
            ((>= (fill-pointer (client-line c)) *max-line*) (return :too-long))
            (t (vector-push-extend ch (client-line c)))))))

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

(defun answer (sock c root)
  "Answer C's whole request on SOCK; the outcome, for the log."
  (let ((file (if (eq (client-path c) :bad) :bad (request-file (client-path c) root))))
    (case file
      (:bad (send-line "400 Bad Request" sock) "400")
      ((nil) (send-line "404 Not Found" sock) "404")
      (t (format nil "200 ~D lines" (send-file file sock))))))

(defun serve-ready (sock c root idle)
  "SOCK has input (or an end): read it; when the request is whole, answer.
The outcome for the log, or NIL while the request is still coming."
  (handler-case
      (let ((state (read-available sock c)))
        (case state
          (:more nil)
          (:gone (unless (client-request c) (setf (client-request c) "(nothing)"))
           "dropped: client left")
          (t (with-timeout (idle (error "sending took over ~A s" idle))
               (prog1 (if (eq state :too-long)
                          (progn (unless (client-request c)
                                   (setf (client-request c) "(over 8 KiB)"))
                                 (send-line "400 Bad Request" sock)
                                 "400 too long")
                          (answer sock c root))
                 (finish-output sock))))))
    (serious-condition (e)
      (format nil "failed: ~A" (printable (princ-to-string e))))))

;;; The server

(defun serve (port root &key (interface "127.0.0.1") max (idle 10))
  "Serve ROOT on INTERFACE:PORT in one thread, MAX connections (NIL: forever)."
  (let* ((root (or (probe-file (concatenate 'string (string-right-trim "/" root) "/"))
                   (error "~A: no such directory" root)))
         (server (open-socket-server port :interface interface :backlog 1024))
         (clients (make-hash-table :test 'eq))      ; stream -> CLIENT
         (accepted 0) (finished 0))
    (flet ((finish (sock outcome)
             (let ((c (gethash sock clients)))
               (remhash sock clients)
               (ignore-errors (close sock :abort t))  ; leaves the poller by itself
               (incf finished)
               (log-line "~A ~S ~A" (client-peer c)
                         (printable (or (client-request c) "(idle)")) outcome))))
      (with-poller (poller :idle idle)
        (unwind-protect
             (progn
               (poller-add poller server)
               (multiple-value-bind (host port) (socket-server-host/port server)
                 (log-line "http-server: serving ~A, listening on ~A:~D" (namestring root) host port))
               (loop until (and max (>= finished max))
                     do (dolist (ready (poller-wait poller))
                          (destructuring-bind (sock . status) ready
                            (cond ((eq sock server)
                                   ;; take every connection waiting, up to --max
                                   (loop while (or (null max) (< accepted max))
                                         do (let ((new (handler-case (socket-accept server :wait 0)
                                                         (network (e) ; e.g. out of descriptors
                                                           (log-line "http-server: accept failed: ~A" e)
                                                           (sleep 0.1)
                                                           nil))))
                                              (unless new (return))
                                              (incf accepted)
                                              (setf (gethash new clients)
                                                    (make-client
                                                     :peer (handler-case
                                                               (multiple-value-bind (host port)
                                                                   (socket-host/port new)
                                                                 (format nil "~A:~D" host port))
                                                             (error () "?"))))
                                              (poller-add poller new)
                                              (poller-touch poller new)))
                                   (when (and max (>= accepted max))
                                     (poller-remove poller server)))
                                  ((not (gethash sock clients))) ; finished this round
                                  ((eq status :idle) (finish sock "dropped: idle"))
                                  (t (let ((outcome (serve-ready sock (gethash sock clients)
                                                                 root idle)))
                                       (if outcome
                                           (finish sock outcome)
                                           (poller-touch poller sock)))))))))
          (loop for sock being the hash-keys of clients
                do (finish sock "closed by the server"))
          (socket-server-close server)
          (log-line "http-server: stopped"))))))

(defun main (args)
  (flet ((option (name default)
           (let ((tail (member name args :test #'string=)))
             (if tail (second tail) default))))
    (if (< (length args) 2)
        (format *error-output* "usage: http-server.lisp PORT ROOT [--interface ADDR] [--max N] [--idle SECONDS]~%")
        (serve (parse-integer (first args)) (second args)
               :interface (option "--interface" "127.0.0.1")
               :max (let ((m (option "--max" nil))) (and m (parse-integer m)))
               :idle (let ((i (option "--idle" nil))) (if i (read-from-string i) 10))))))

(main (cddr (member "-shell" ext:*command-args* :test #'string=)))
