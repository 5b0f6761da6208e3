;;; swank-bench.el - the Emacs client of `make bench-swank`
;;; (bench/run-swank-bench): Emacs in batch mode with Debian's SLIME
;;; connects to the Swank server at 127.0.0.1:PORT, makes 100 untimed
;;; evaluations, then COUNT synchronous `slime-eval's of (cl:+ 1 2), each
;;; answer checked, and prints "evals/s N" (or "fail: WHY", exit 1).
;;; Every wait is bounded.
;;; Use: emacs -Q --batch -l swank-bench.el PORT COUNT
(require 'cl-lib)
(let ((dir (car (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/slime-*"))))
  (add-to-list 'load-path dir))
(require 'slime)
(setq slime-protocol-version 'ignore)
(defun swank-bench-fail (why)
  (princ (format "fail: %s\n" why))
  (kill-emacs 1))
(let* ((port (string-to-number (car command-line-args-left)))
       (count (string-to-number (cadr command-line-args-left)))
       (slime-net-coding-system 'utf-8-unix))
  (condition-case err
      (progn
        (slime-connect "127.0.0.1" port)
        (with-timeout (60 (swank-bench-fail "not connected within 60 s"))
          (while (not (and (slime-current-connection)
                           (slime-connection-name (slime-current-connection))
                           (ignore-errors (slime-lisp-implementation-type))))
            (accept-process-output nil 0.1)))
        (with-timeout (300 (swank-bench-fail "not done within 300 s"))
          (dotimes (_ 100)
            (unless (equal 3 (slime-eval '(cl:+ 1 2))) (swank-bench-fail "wrong answer")))
          (let ((start (float-time)))
            (dotimes (_ count)
              (unless (equal 3 (slime-eval '(cl:+ 1 2))) (swank-bench-fail "wrong answer")))
            (let ((elapsed (- (float-time) start)))
              (slime-disconnect)
              (princ (format "evals/s %.1f\n" (/ count elapsed)))))))
    (error (swank-bench-fail (format "%S" err))))
  (kill-emacs 0))
