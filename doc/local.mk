## doc/local.mk - the manual (included by Makefile.am).
##
## doc/ecl-sock.texi is built as info and as HTML (one page per node, in
## doc/ecl-sock.html/) by `make', and both are installed by `make install'
## (info in $(infodir), HTML in $(htmldir)), when configure found makeinfo
## (HAVE_MAKEINFO); without it `make' builds everything else.  The info file is made in the
## build tree (info-in-builddir) so that builds never write into srcdir;
## the distribution carries it.  Each chapter is its own file: a new
## chapter needs an @include line in doc/ecl-sock.texi (where its comment
## says) and a line here.
AUTOMAKE_OPTIONS = info-in-builddir
info_TEXINFOS = doc/ecl-sock.texi
doc_ecl_sock_TEXINFOS = \
	doc/clisp.texi \
	doc/conditions.texi \
	doc/internals.texi
doc_ecl_sock_TEXINFOS += doc/poller.texi
## Chapters of the other API faces, one line each, e.g.
## doc_ecl_sock_TEXINFOS += doc/allegro.texi
doc_ecl_sock_TEXINFOS += doc/allegro.texi
doc_ecl_sock_TEXINFOS += doc/embedding.texi
doc_ecl_sock_TEXINFOS += doc/libraries.texi
doc_ecl_sock_TEXINFOS += doc/port.texi
doc_ecl_sock_TEXINFOS += doc/ssl.texi
doc_ecl_sock_TEXINFOS += doc/bsd.texi
## (end of the API faces' chapter lines)

AM_MAKEINFOFLAGS = --no-split
AM_MAKEINFOHTMLFLAGS = --split=node

## distcheck makes `dvi' by default, which needs TeX; check the HTML
## instead (TeX is not among the build requirements).
AM_DISTCHECK_DVI_TARGET = html

## Automake builds and installs HTML only on request; make it part of
## `make', `make install' and `make uninstall' (Makefile.am's lists of
## install steps).
if HAVE_MAKEINFO
all-local: html
INSTALL_LOCAL += install-html-am
UNINSTALL_LOCAL += uninstall-html-am
endif

## examples/README (the list of examples); the examples themselves are
## listed by examples/local.mk.
EXTRA_DIST += examples/README
