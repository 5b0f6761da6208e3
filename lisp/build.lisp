;;;; build.lisp - compile the Lisp layer and link it with the C primitives.
;;;;
;;;; Run as: ecl -norc -shell lisp/build.lisp  with the environment
;;;;   SRCDIR    the source tree         BUILDDIR  where objects go
;;;;   CORE_OBJECT  the C primitives as one object (eclsock-core.o)
;;;;   LINK_LIBS libraries the C primitives need (OpenSSL's -lssl -lcrypto)
;;;;   MODULE_FILES  the Lisp files, relative to SRCDIR, in load order
;;;;   STATIC_LIB    also write these objects to this archive (optional)
;;;;   OUTPUT        the fas to write, relative to BUILDDIR (default sock.fas)
;;;;   PRELOAD       a fas to load first (optional: sock.fas, for a face
;;;;                 such as sock-bsd.fas that is built on the core module)
;;;; CORE_OBJECT and LINK_LIBS may be unset for a module without C of its own.
;;;; Each file is compiled to native code (:system-p) and then loaded from
;;;; source, so that the next file compiles against its packages and macros.
;;;; The objects are linked into sock.fas through C:BUILD-FASL's public
;;;; arguments only: CORE_OBJECT goes into :LISP-FILES after the Lisp objects
;;;; (ECL links a file without an ECL entry point as it is, calling no init
;;;; function for it), because ECL 24 puts :LD-FLAGS before the objects on
;;;; the linker's command line where ECL 21 put them after.  The libraries go
;;;; where each ECL puts them after the objects: C:*USER-LINKER-LIBS* where
;;;; it exists (24.5.10 has it), :LD-FLAGS otherwise (21.2.1).

(require :cmp)


(defun split (string)
  "The words of STRING, separated by blanks."
  (loop with start = 0
        for pos = (position #\Space string :start start)
        for word = (subseq string start pos)
        unless (string= word "") collect word
        while pos do (setf start (1+ pos))))

(defun env (name &optional default)
  (or (ext:getenv name) default (error "~A is not set" name)))

(let* ((src (env "SRCDIR"))
       (build (env "BUILDDIR"))
       (objdir (concatenate 'string build "/lisp-build/"))
       (objects '()))
  (ensure-directories-exist objdir)
  (let ((pre (ext:getenv "PRELOAD")))
    (when (and pre (plusp (length pre)))
      (load pre :verbose nil)))
  (dolist (file (split (env "MODULE_FILES")))
    (let ((source (format nil "~A/~A" src file))
          (object (format nil "~A~A.o" objdir (pathname-name file))))
      (multiple-value-bind (out warnings failure)
          (compile-file source :output-file object :system-p t :verbose nil :print nil)
        (declare (ignore warnings))
        (unless (and out (not failure))
          (format *error-output* "~&build: compiling ~A failed~%" source)
          (ext:quit 1)))
      (push object objects)
      (load source :verbose nil)))
  (let ((core (ext:getenv "CORE_OBJECT"))
        (libs (env "LINK_LIBS" " "))
        (libs-var (find-symbol "*USER-LINKER-LIBS*" "C")))
    (progv (and libs-var (list libs-var))
        (and libs-var (list (format nil "~@[~A ~]~A" (symbol-value libs-var) libs)))
      (c:build-fasl (concatenate 'string build "/" (env "OUTPUT" "sock.fas"))
                    :lisp-files (append (reverse objects)
                                        (and core (plusp (length core)) (list core)))
                    :ld-flags (and (null libs-var) (split libs)))))
  ;; The same objects as an archive for libecl-sock, whose ecl_sock_init()
  ;; runs them through the stable entry point init_lib_ECL_SOCK.
  (let ((lib (ext:getenv "STATIC_LIB")))
    (when lib
      (c:build-static-library (pathname lib) :lisp-files (reverse objects)
                                  :init-name "init_lib_ECL_SOCK")))
  (ext:quit 0))
