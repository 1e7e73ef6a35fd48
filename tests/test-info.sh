#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# "bmapscan info" on the peer test data and on broken bmaps: exit status,
# the text and JSON reports, one stderr line per failure, usage errors.
set -euo pipefail

: "${BMAPSCAN:?BMAPSCAN must name the bmapscan binary}"
: "${TESTDATA:?TESTDATA must name tests/data}"
: "${TEST_TMPDIR:?TEST_TMPDIR must name a scratch directory}"

mkdir -p "$TEST_TMPDIR"
work=$(mktemp -d "$TEST_TMPDIR/test-info.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

passed=0
failed=0

pass() {
        passed=$((passed + 1))
}

fail() {
        failed=$((failed + 1))
        printf 'FAIL: %s\n' "$1" >&2
        shift
        local line
        for line in "$@"; do
                printf '%s\n' "$line" | sed 's/^/    /' >&2
        done
}

# run CMD...: runs it, setting rc, out and err (and $work/out, $work/err).
run() {
        rc=0
        "$@" >"$work/out" 2>"$work/err" || rc=$?
        out=$(<"$work/out")
        err=$(<"$work/err")
        what="$*"
}

show_output() {
        printf '%s\n' "--- stdout:" "$out" "--- stderr:" "$err"
}

expect_rc() {
        if [ "$rc" -eq "$1" ]; then
                pass
        else
                fail "$what: exit status" "expected: $1" "got:      $rc" "$(show_output)"
        fi
}

# expect_stdout_line REGEX: some line of stdout matches (an extended regex).
expect_stdout_line() {
        local line
        while IFS= read -r line; do
                if [[ $line =~ $1 ]]; then
                        pass
                        return
                fi
        done <"$work/out"
        fail "$what: stdout" "expected a line matching: $1" "got:" "$out"
}

expect_stdout_empty() {
        if [ ! -s "$work/out" ]; then
                pass
        else
                fail "$what: stdout" "expected: nothing" "got: $out"
        fi
}

expect_stderr_empty() {
        if [ ! -s "$work/err" ]; then
                pass
        else
                fail "$what: stderr" "expected: nothing" "got: $err"
        fi
}

# expect_stderr_one_line [FIXED-STRING...]: exactly one line, holding each string.
expect_stderr_one_line() {
        local s lines
        mapfile lines <"$work/err"
        if [ "${#lines[@]}" -eq 1 ] && [[ ${lines[0]} == *$'\n' ]]; then
                pass
        else
                fail "$what: stderr" "expected: exactly one line" "got ${#lines[@]} line(s):" "$err"
        fi
        for s in "$@"; do
                if [[ $err == *"$s"* ]]; then
                        pass
                else
                        fail "$what: stderr" "expected it to contain: $s" "got: $err"
                fi
        done
}

# expect_json KEY=JSON-VALUE | KEY~=SUBSTRING | !KEY ...: stdout is one line
# holding exactly one JSON object, with those members (values compared with
# their JSON type: true is not 1).
expect_json() {
        local msg
        if msg=$(python3 -c '
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
if text.count("\n") != 1 or not text.endswith("\n"):
    print("not exactly one line: %r" % text[:300])
    sys.exit(1)
try:
    d = json.loads(text)
except ValueError as e:
    print("not one JSON value (%s): %r" % (e, text[:300]))
    sys.exit(1)
if not isinstance(d, dict):
    print("not a JSON object: %r" % (d,))
    sys.exit(1)
bad = []
for spec in sys.argv[2:]:
    if spec.startswith("!"):
        if spec[1:] in d:
            bad.append("%s: expected no such member, got %r" % (spec[1:], d[spec[1:]]))
        continue
    if "~=" in spec:
        k, sub = spec.split("~=", 1)
        if not isinstance(d.get(k), str) or sub not in d[k]:
            bad.append("%s: expected a string containing %r, got %r" % (k, sub, d.get(k)))
        continue
    k, v = spec.split("=", 1)
    want = json.loads(v)
    if k not in d:
        bad.append("%s: expected %r, got no such member" % (k, want))
    elif type(d[k]) is not type(want) or d[k] != want:
        bad.append("%s: expected %r, got %r" % (k, want, d[k]))
if bad:
    print("; ".join(bad))
    sys.exit(1)
' "$work/out" "$@" 2>&1); then
                pass
        else
                fail "$what: JSON" "$msg"
        fi
}

if ! command -v python3 >/dev/null; then
        echo "test-info: python3 is needed to check the JSON output" >&2
        exit 77
fi

# --- Valid bmaps ------------------------------------------------------------

# file version checksum-type file-checksum(text word) file-checksum(JSON word)
valid_cases=(
        "bmaptool/test.image.bmap.v1.2 1.2 sha1 absent absent"
        "bmaptool/test.image.bmap.v1.3 1.3 sha1 verified ok"
        "bmaptool/test.image.bmap.v1.4 1.4 sha256 verified ok"
        "bmaptool/test.image.bmap.v2.0 2.0 sha256 verified ok"
        "blockmap/stringified.bmap 2.0 sha256 verified ok"
)

for c in "${valid_cases[@]}"; do
        read -r file version ctype fc_text fc_json <<<"$c"
        path="$TESTDATA/$file"
        version_re=${version//./\\.}

        run "$BMAPSCAN" info "$path"
        expect_rc 0
        expect_stderr_empty
        expect_stdout_line "^bmap: +$path\$"
        expect_stdout_line "^format version: +$version_re\$"
        expect_stdout_line '^image size: +821752 bytes( |$)'
        expect_stdout_line '^block size: +4096 bytes$'
        expect_stdout_line '^blocks: +201$'
        expect_stdout_line '^mapped blocks: +117( |$)'
        expect_stdout_line '^ranges: +48$'
        expect_stdout_line "^checksums: +$ctype, on every range\$"
        expect_stdout_line "^file checksum: +$fc_text( |:|\$)"
        expect_stdout_line '^valid: +yes$'

        run "$BMAPSCAN" info --json "$path"
        expect_rc 0
        expect_stderr_empty
        expect_json "path=\"$path\"" "version=\"$version\"" image_size=821752 block_size=4096 blocks_count=201 \
                mapped_blocks=117 mapped_bytes=479232 ranges=48 ranges_with_checksum=48 \
                "checksum_type=\"$ctype\"" "file_checksum=\"$fc_json\"" valid=true error=null

        # The option may follow the file.
        run "$BMAPSCAN" info "$path" --json
        expect_rc 0
        expect_json "version=\"$version\"" valid=true
done

# A path that needs escaping in JSON, and one that looks like an option.
odd="$work/a \"quoted\" back\\slash name.bmap"
cp "$TESTDATA/bmaptool/test.image.bmap.v2.0" "$odd"
run "$BMAPSCAN" info --json "$odd"
expect_rc 0
expect_json "path=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$odd")" valid=true

# A name with a newline and a byte that is not UTF-8: valid UTF-8 JSON (the
# newline escaped, the bad byte as U+FFFD), and in the text report the name
# shown as error lines show it, on one line.
weird="$work/new"$'\n'"line"$'\xff'".bmap"
cp "$TESTDATA/bmaptool/test.image.bmap.v2.0" "$weird"
run "$BMAPSCAN" info --json "$weird"
expect_rc 0
expect_json "path=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$work/new"$'\n'"line"$'\ufffd'".bmap")" valid=true
run "$BMAPSCAN" info "$weird"
expect_rc 0
expect_stdout_line "^bmap: +$work/new\?line\?\.bmap$"
if LC_ALL=C grep -q $'\xff' "$work/out"; then fail "$what: the raw 0xff byte reached stdout" "$out"; else pass; fi
run "$BMAPSCAN" info --json "$work/missing"$'\n'$'\xff'
expect_rc 1
expect_json valid=false "error~=$work/missing"
expect_stderr_one_line "$work/missing??"

cp "$TESTDATA/bmaptool/test.image.bmap.v2.0" "$work/-dash.bmap"
run bash -c 'cd "$1" && exec "$2" info -- -dash.bmap' _ "$work" "$BMAPSCAN"
expect_rc 0
expect_stdout_line '^valid: +yes$'

# A 1.3+ bmap without its file checksum: read, with one warning.
grep -v '<BmapFileChecksum>' "$TESTDATA/bmaptool/test.image.bmap.v2.0" >"$work/no-file-checksum.bmap"
run "$BMAPSCAN" info "$work/no-file-checksum.bmap"
expect_rc 0
expect_stdout_line '^file checksum: +absent'
expect_stdout_line '^valid: +yes$'
expect_stderr_one_line "$work/no-file-checksum.bmap" "warning"
run "$BMAPSCAN" info --json "$work/no-file-checksum.bmap"
expect_rc 0
expect_json 'file_checksum="absent"' valid=true
run "$BMAPSCAN" -q info "$work/no-file-checksum.bmap"
expect_rc 0
expect_stderr_empty

# --- Invalid bmaps -----------------------------------------------------------

# A wrong file checksum: described, but not valid.
for path in "$TESTDATA"/blockmap/invalid/file-checksum/*.bmap; do
        run "$BMAPSCAN" info "$path"
        expect_rc 1
        expect_stderr_one_line "$path" "checksum"
        expect_stdout_line '^ranges: +48$'
        expect_stdout_line '^file checksum: +MISMATCH'
        expect_stdout_line '^valid: +no$'

        run "$BMAPSCAN" info --json "$path"
        expect_rc 1
        expect_stderr_one_line "$path"
        expect_json "path=\"$path\"" mapped_blocks=117 ranges=48 'file_checksum="bad"' valid=false 'error~=checksum'
done

# Malformed range checksums: refused outright.
for path in "$TESTDATA"/blockmap/invalid/range/*.bmap; do
        run "$BMAPSCAN" info "$path"
        expect_rc 1
        expect_stderr_one_line "$path" "119-133"
        expect_stdout_empty

        run "$BMAPSCAN" info --json "$path"
        expect_rc 1
        expect_stderr_one_line "$path"
        expect_json "path=\"$path\"" valid=false "error~=$path" 'error~=119-133' '!ranges' '!version'
done

# Files that look like bmaps (they start with '<') but are broken.
printf '<?xml version="1.0"?>\n<bmap version="2.0">\n  <ImageSize>1\n' >"$work/truncated.bmap"
printf '<<< not XML >>>\n' >"$work/not-xml.bmap"
printf '<html><body>a web page</body></html>\n' >"$work/html.bmap"
printf '<?xml version="1.0"?>\n<bmap version="3.0">\n</bmap>\n' >"$work/future.bmap"
printf '<?xml version="1.0"?>\n<!DOCTYPE bmap [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<bmap version="2.0"><ImageSize>&xxe;</ImageSize></bmap>\n' >"$work/xxe.bmap"
sed 's/<BlocksCount> 201 </<BlocksCount> 202 </' "$TESTDATA/bmaptool/test.image.bmap.v1.2" >"$work/blocks-count.bmap"
sed 's/<Range sha1="\([0-9a-f]*\)"> 3-5 </<Range sha1="\1"> 3-6 </' "$TESTDATA/bmaptool/test.image.bmap.v1.2" \
        >"$work/mapped-count.bmap"

for name in truncated not-xml html future xxe blocks-count mapped-count; do
        path="$work/$name.bmap"
        run "$BMAPSCAN" info "$path"
        expect_rc 1
        expect_stderr_one_line "$path"
        expect_stdout_empty

        run "$BMAPSCAN" info --json "$path"
        expect_rc 1
        expect_stderr_one_line "$path"
        expect_json "path=\"$path\"" valid=false "error~=$path" '!ranges'
done

# Files that cannot be read at all (info takes images too, so an empty
# file is an image it cannot describe): one line on stderr.
: >"$work/empty.bmap"
mkdir "$work/directory.bmap"
for name in empty directory missing; do
        path="$work/$name.bmap"
        for json in "" --json; do
                run "$BMAPSCAN" info $json "$path"
                expect_rc 1
                expect_stderr_one_line "$path"
        done
done

# A short text file is an image of under one sector: one unknown region,
# mapped in full (no partition table can be read from it).
printf 'this is not a bmap\n' >"$work/text.bmap"
run "$BMAPSCAN" info "$work/text.bmap"
expect_rc 0
expect_stdout_line 'smaller than one 512-byte sector: mapped in full$'
expect_stdout_line '^mapped 19 bytes of 19 bytes \(100\.0%\)$'
run "$BMAPSCAN" info --json "$work/text.bmap"
expect_rc 0
expect_json mapped_bytes=19 image_size=19 'table="none"'

run "$BMAPSCAN" info "$work/xxe.bmap"
if grep -Fq "$(head -n 1 /etc/passwd | cut -d: -f1-3)" "$work/err" "$work/out"; then
        fail "$what: quotes /etc/passwd" "$(show_output)"
else
        pass
fi

# --- Usage ---------------------------------------------------------------------

v20="$TESTDATA/bmaptool/test.image.bmap.v2.0"
usage_cases=(
        "info"
        "info --json"
        "info $v20 $v20"
        "info --bogus $v20"
        "info -x $v20"
        "info --json=yes $v20"
)
for c in "${usage_cases[@]}"; do
        read -r -a args <<<"$c"
        run "$BMAPSCAN" "${args[@]}"
        expect_rc 2
        expect_stderr_one_line
        expect_stdout_empty
done

for h in --help -h; do
        run "$BMAPSCAN" info $h
        expect_rc 0
        expect_stdout_line '^Usage: bmapscan info'
        expect_stdout_line '--json'
        expect_stderr_empty

        # Help wins over a missing argument, whatever follows it.
        run "$BMAPSCAN" info $h "$v20"
        expect_rc 0
        expect_stdout_line '^Usage: bmapscan info'
done

run "$BMAPSCAN" --help
expect_rc 0
expect_stdout_line '^ +info '
expect_stderr_empty

echo "test-info: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
