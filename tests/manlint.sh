#!/bin/sh
# SPDX-License-Identifier: MIT
# Lint every man page with groff's warnings turned into failures, and check
# that each exported function of the public header has a page.
status=0
for page in man/man3/*.3 man/man7/*.7; do
	# .so links are resolved by man(1); lint the page they point to.
	if head -1 "$page" | grep -q '^\.so '; then
		target=man/$(sed -n '1s/^\.so //p' "$page")
		[ -f "$target" ] || { echo "$page: .so target $target missing"; status=1; }
		continue
	fi
	out=$(groff -man -ww -z "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "$page:"; echo "$out"; status=1
	fi
done
for fn in $(sed -n 's/^AQ_API [^(]*[ *]\(aq_[a-z_0-9]*\)(.*/\1/p' include/asyncq.h include/asyncq_redis.h); do
	[ -f "man/man3/$fn.3" ] || { echo "no man page for $fn"; status=1; }
done
[ $status -eq 0 ] && echo "  man pages: lint clean, one per function"
exit $status
